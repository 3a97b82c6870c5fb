//! Schema migrations, applied in order at start, each in its own transaction, recorded in
//! `schema_migrations`. Portable SQL only (SQLite and PostgreSQL): app-generated TEXT ids,
//! BIGINT unix-millisecond times, BIGINT 0/1 flags, `$n` placeholders.
//!
//! Invariant: a migration, once released, is never edited; changes are new migrations.

/// `(version, statements)`.
pub const MIGRATIONS: &[(i64, &[&str])] = &[
    (
        1,
        &[
            "CREATE TABLE api_keys (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            tenant TEXT NOT NULL,
            scopes TEXT NOT NULL,
            key_hash TEXT NOT NULL UNIQUE,
            prefix TEXT NOT NULL,
            rate_limit TEXT,
            created_at BIGINT NOT NULL
        )",
            "CREATE TABLE images (
            id TEXT PRIMARY KEY,
            tenant TEXT NOT NULL,
            storage_key TEXT NOT NULL UNIQUE,
            filename TEXT NOT NULL,
            content_type TEXT NOT NULL,
            format TEXT NOT NULL,
            bytes BIGINT NOT NULL,
            width BIGINT NOT NULL,
            height BIGINT NOT NULL,
            orientation TEXT NOT NULL,
            has_alpha BIGINT NOT NULL,
            blake3 TEXT NOT NULL,
            description TEXT NOT NULL,
            is_private BIGINT NOT NULL,
            owner TEXT,
            created_at BIGINT NOT NULL,
            expires_at BIGINT,
            exif TEXT NOT NULL,
            generation_info TEXT,
            placeholder TEXT NOT NULL
        )",
            "CREATE UNIQUE INDEX images_tenant_blake3 ON images (tenant, blake3)",
            "CREATE INDEX images_tenant_created ON images (tenant, created_at, id)",
            "CREATE INDEX images_expires ON images (expires_at)",
            "CREATE TABLE image_tags (
            image_id TEXT NOT NULL,
            tenant TEXT NOT NULL,
            name TEXT NOT NULL,
            PRIMARY KEY (image_id, name)
        )",
            "CREATE INDEX image_tags_tenant_name ON image_tags (tenant, name)",
            "CREATE TABLE pending_objects (
            storage_key TEXT PRIMARY KEY,
            created_at BIGINT NOT NULL
        )",
        ],
    ),
    (
        2,
        &[
            "CREATE TABLE albums (
            id TEXT PRIMARY KEY,
            tenant TEXT NOT NULL,
            owner TEXT,
            name TEXT NOT NULL,
            description TEXT NOT NULL,
            is_public BIGINT NOT NULL,
            external_id TEXT,
            cover_image_id TEXT,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL
        )",
            "CREATE INDEX albums_tenant_created ON albums (tenant, created_at, id)",
            "CREATE UNIQUE INDEX albums_tenant_external ON albums (tenant, external_id)",
            "CREATE TABLE album_images (
            album_id TEXT NOT NULL,
            image_id TEXT NOT NULL,
            tenant TEXT NOT NULL,
            position BIGINT NOT NULL,
            added_at BIGINT NOT NULL,
            PRIMARY KEY (album_id, image_id)
        )",
            "CREATE INDEX album_images_image ON album_images (image_id)",
            "CREATE INDEX album_images_order ON album_images (album_id, position)",
            "CREATE TABLE album_tokens (
            id TEXT PRIMARY KEY,
            album_id TEXT NOT NULL,
            tenant TEXT NOT NULL,
            token_hash TEXT NOT NULL UNIQUE,
            prefix TEXT NOT NULL,
            expires_at BIGINT,
            created_at BIGINT NOT NULL
        )",
            "CREATE INDEX album_tokens_album ON album_tokens (album_id)",
            "CREATE TABLE shares (
                id TEXT PRIMARY KEY,
                image_id TEXT NOT NULL,
                tenant TEXT NOT NULL,
                token_hash TEXT NOT NULL UNIQUE,
                prefix TEXT NOT NULL,
                expires_at BIGINT,
                max_views BIGINT,
                views BIGINT NOT NULL,
                created_at BIGINT NOT NULL
            )",
            "CREATE INDEX shares_image ON shares (image_id)",
            "CREATE TABLE avatars (
                tenant TEXT NOT NULL,
                user_id TEXT NOT NULL,
                storage_key TEXT NOT NULL,
                format TEXT NOT NULL,
                bytes BIGINT NOT NULL,
                width BIGINT NOT NULL,
                height BIGINT NOT NULL,
                updated_at BIGINT NOT NULL,
                PRIMARY KEY (tenant, user_id)
            )",
            "CREATE INDEX avatars_key ON avatars (storage_key)",
            "CREATE TABLE tenant_quotas (
                tenant TEXT PRIMARY KEY,
                quota_bytes BIGINT,
                quota_images BIGINT
            )",
        ],
    ),
    (
        3,
        &[
            "CREATE TABLE webhooks (
                id TEXT PRIMARY KEY,
                tenant TEXT NOT NULL,
                url TEXT NOT NULL,
                events TEXT NOT NULL,
                enabled BIGINT NOT NULL,
                description TEXT NOT NULL,
                secret TEXT NOT NULL,
                old_secret TEXT,
                old_secret_until BIGINT,
                failing_since BIGINT,
                last_failure_at BIGINT,
                disabled_reason TEXT,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL
            )",
            "CREATE INDEX webhooks_tenant ON webhooks (tenant, created_at)",
            "CREATE TABLE webhook_events (
                id TEXT PRIMARY KEY,
                tenant TEXT NOT NULL,
                type TEXT NOT NULL,
                object TEXT NOT NULL,
                data TEXT NOT NULL,
                created_at BIGINT NOT NULL
            )",
            "CREATE TABLE webhook_deliveries (
                id TEXT PRIMARY KEY,
                seq BIGINT NOT NULL UNIQUE,
                event_id TEXT NOT NULL,
                webhook_id TEXT NOT NULL,
                object TEXT NOT NULL,
                status TEXT NOT NULL,
                attempts BIGINT NOT NULL,
                next_at BIGINT,
                lease_until BIGINT,
                last_status BIGINT,
                last_latency_ms BIGINT,
                last_response TEXT,
                last_error TEXT,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL
            )",
            "CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_at)",
            "CREATE INDEX webhook_deliveries_object ON webhook_deliveries (webhook_id, object, seq)",
            "CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id)",
        ],
    ),
    (
        4,
        &[
            "CREATE TABLE users (
                id TEXT PRIMARY KEY,
                email TEXT NOT NULL UNIQUE,
                name TEXT NOT NULL,
                password_hash TEXT NOT NULL,
                role TEXT NOT NULL,
                tenant TEXT NOT NULL,
                scopes TEXT NOT NULL,
                disabled BIGINT NOT NULL,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL
            )",
            "CREATE TABLE sessions (
                id TEXT PRIMARY KEY,
                user_id TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                expires_at BIGINT NOT NULL,
                revoked_at BIGINT
            )",
            "CREATE INDEX sessions_user ON sessions (user_id)",
            "CREATE TABLE refresh_tokens (
                token_hash TEXT PRIMARY KEY,
                session_id TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                used_at BIGINT
            )",
            "CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id)",
            "CREATE TABLE audit_log (
                id TEXT PRIMARY KEY,
                at BIGINT NOT NULL,
                actor TEXT NOT NULL,
                tenant TEXT NOT NULL,
                action TEXT NOT NULL,
                target TEXT NOT NULL,
                method TEXT NOT NULL,
                path TEXT NOT NULL,
                status BIGINT NOT NULL,
                ip TEXT NOT NULL
            )",
            "CREATE INDEX audit_log_at ON audit_log (at, id)",
            "CREATE INDEX audit_log_tenant ON audit_log (tenant, at)",
            "CREATE TABLE tenants (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                active BIGINT NOT NULL,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL
            )",
        ],
    ),
    (
        5,
        &[
            // A tenant's rate limits (JSON of `RateOverride`), under its keys' own.
            "ALTER TABLE tenants ADD COLUMN rate_limit TEXT",
        ],
    ),
    (
        6,
        &[
            // Where a row came from: an API upload, or the library indexer (a file already in
            // a library root, never moved or rewritten by indexing).
            "ALTER TABLE images ADD COLUMN source TEXT NOT NULL DEFAULT 'upload'",
            // The file's modification time (unix ms) and its ETag (S3): an indexed file is
            // analysed again only when its size, time or ETag changed.
            "ALTER TABLE images ADD COLUMN file_mtime BIGINT",
            "ALTER TABLE images ADD COLUMN etag TEXT",
            // Generation info fields searched by `model=`, `sampler=`, `seed=`, `lora=`
            // (`gen_loras` is `,a,b,`: lower-cased names between commas).
            "ALTER TABLE images ADD COLUMN gen_model TEXT",
            "ALTER TABLE images ADD COLUMN gen_sampler TEXT",
            "ALTER TABLE images ADD COLUMN gen_seed TEXT",
            "ALTER TABLE images ADD COLUMN gen_loras TEXT",
            // Uploads are deduplicated per tenant; files of a library may repeat.
            "DROP INDEX images_tenant_blake3",
            "CREATE UNIQUE INDEX images_tenant_blake3 ON images (tenant, blake3) WHERE source = 'upload'",
            "CREATE INDEX images_tenant_source ON images (tenant, source)",
        ],
    ),
    (
        7,
        &[
            // Tags as things: an id, a colour and a kind per name of a tenant (images carry
            // names in image_tags; a name gets its row when first listed or named).
            "CREATE TABLE tags (
                id TEXT PRIMARY KEY,
                tenant TEXT NOT NULL,
                name TEXT NOT NULL,
                color TEXT,
                kind TEXT NOT NULL,
                created_at BIGINT NOT NULL
            )",
            "CREATE UNIQUE INDEX tags_tenant_name ON tags (tenant, name)",
        ],
    ),
    (
        8,
        &[
            // Who runs a once-per-cluster job (the expiry sweep, library indexing, upkeep):
            // the holder renews its lease; a lease past `until` goes to whoever asks next.
            "CREATE TABLE leases (
                name TEXT PRIMARY KEY,
                holder TEXT NOT NULL,
                until BIGINT NOT NULL
            )",
        ],
    ),
];
