//! What the route table cannot say about each API operation: its summary, query parameters,
//! request body and answers. `super` turns this and `routes::API` into the document.

use crate::control::Op;

/// A query parameter.
pub struct Param {
    pub name: &'static str,
    /// Its JSON Schema, as JSON text (e.g. `{"type":"integer","minimum":1}`).
    pub schema: &'static str,
    pub description: &'static str,
    pub required: bool,
}

/// One operation's documentation.
pub struct OpDoc {
    pub summary: &'static str,
    /// The group it is shown under (`images`, `albums`, …).
    pub tag: &'static str,
    pub query: &'static [Param],
    /// `(content type, schema name in components.schemas)`.
    pub body: Option<(&'static str, &'static str)>,
    /// `(status, content type, schema name)`; an empty schema name is a binary body.
    pub ok: (u16, &'static str, &'static str),
    /// Error statuses this operation can answer beyond the common ones (400, 401, 403, 404,
    /// 429, 503, and 405 for another method), each with the `Error` body.
    pub errors: &'static [u16],
}

/// A list of tags (repeated, or comma-separated).
const TAGS: &str = r#"{"type":"array","items":{"type":"string","minLength":1,"maxLength":64}}"#;

/// `?tenant=` on an operation about one tenant's data.
const TENANT: Param = Param {
    name: "tenant",
    schema: r#"{"type":"string","pattern":"^[a-z0-9_-]{1,64}$"}"#,
    description: "Admins of every tenant: act on this tenant (`*` = all tenants on listings)",
    required: false,
};

/// `?tenant=` on a listing (`*` = every tenant).
const TENANT_ALL: Param = Param {
    name: "tenant",
    schema: r#"{"type":"string","pattern":"^([a-z0-9_-]{1,64}|\\*)$"}"#,
    description: "Admins of every tenant: act on this tenant (`*` = all tenants on listings)",
    required: false,
};

const PAGE: Param = Param {
    name: "page",
    schema: r#"{"type":"integer","minimum":1,"maximum":1000000,"default":1}"#,
    description: "Page number, from 1 (not with `cursor`/`limit`)",
    required: false,
};

const PER_PAGE: Param = Param {
    name: "per_page",
    schema: r#"{"type":"integer","minimum":1,"maximum":100,"default":20}"#,
    description: "Items per page (not with `cursor`/`limit`)",
    required: false,
};

const CURSOR: Param = Param {
    name: "cursor",
    schema: r#"{"type":"string"}"#,
    description: "The `next_cursor` of the previous page (empty = from the start); \
                  not with `page`/`per_page`",
    required: false,
};

const LIMIT: Param = Param {
    name: "limit",
    schema: r#"{"type":"integer","minimum":1,"maximum":100,"default":20}"#,
    description: "Items per page in cursor mode (not with `page`/`per_page`)",
    required: false,
};

const ALBUM_TOKEN: Param = Param {
    name: "token",
    schema: r#"{"type":"string"}"#,
    description: "An album token (`rft_…`), instead of an API key",
    required: false,
};

const ORIENTATION: Param = Param {
    name: "orientation",
    schema: r#"{"type":"string","enum":["landscape","portrait","square"]}"#,
    description: "Only images of this shape (case-insensitive)",
    required: false,
};

const W: Param = Param {
    name: "w",
    schema: r#"{"type":"integer","minimum":1}"#,
    description: "Width in pixels (alias `width`; at most `max_dimension`)",
    required: false,
};

const H: Param = Param {
    name: "h",
    schema: r#"{"type":"integer","minimum":1}"#,
    description: "Height in pixels (alias `height`; at most `max_dimension`)",
    required: false,
};

const FIT: Param = Param {
    name: "fit",
    schema: r#"{"type":"string","enum":["cover","crop","contain","fill","inside","outside",
        "clip"]}"#,
    description: "How the image fits the `w`×`h` box",
    required: false,
};

/// The documentation of `op`.
pub fn doc(op: Op) -> OpDoc {
    match op {
        Op::SessionLogin => OpDoc {
            summary: "Sign in for a browser: the access token in the answer, the refresh token \
                      in an HttpOnly, SameSite=Strict cookie (`refract_session`). Needs the \
                      `X-Requested-With` header.",
            tag: "auth",
            query: &[],
            body: Some(("application/json", "Login")),
            ok: (200, "application/json", "SessionTokens"),
            errors: &[413],
        },
        Op::SessionRefresh => OpDoc {
            summary: "A new access token from the session cookie (which rotates). Needs the \
                      `X-Requested-With` header.",
            tag: "auth",
            query: &[],
            body: None,
            ok: (200, "application/json", "SessionTokens"),
            errors: &[],
        },
        Op::SessionLogout => OpDoc {
            summary: "Sign out of the browser session; the cookie is cleared. Needs the \
                      `X-Requested-With` header.",
            tag: "auth",
            query: &[],
            body: None,
            ok: (200, "application/json", "Success"),
            errors: &[],
        },
        Op::Gallery => OpDoc {
            summary: "The public gallery: public images of `ui.gallery_tenant`, newest first, \
                      no key needed.",
            tag: "images",
            query: &[
                CURSOR,
                Param {
                    name: "limit",
                    schema: r#"{"type":"integer","minimum":1,"maximum":100,"default":40}"#,
                    description: "Images per page",
                    required: false,
                },
            ],
            body: None,
            ok: (200, "application/json", "GalleryPage"),
            errors: &[],
        },
        Op::FileOps => OpDoc {
            summary: "File operations on managed files (uploads and library files): move, \
                      rename, copy, delete (files and empty folders), mkdir; up to 100, each \
                      answered on its own, nothing overwritten, crash-safe.",
            tag: "library",
            query: &[TENANT],
            body: Some(("application/json", "FileOps")),
            ok: (200, "application/json", "FileOpsResult"),
            errors: &[413],
        },
        Op::Download => OpDoc {
            summary: "Download images as one ZIP, streamed: a list of ids (entries named by file \
                      name) or a folder (entries keep their paths inside it); at most 10,000 \
                      images and 4 GiB.",
            tag: "library",
            query: &[TENANT],
            body: Some(("application/json", "DownloadSelection")),
            ok: (200, "application/zip", ""),
            errors: &[413],
        },
        Op::CreateTag => OpDoc {
            summary: "Create a tag (names are case-insensitive and unique per tenant).",
            tag: "tags",
            query: &[TENANT],
            body: Some(("application/json", "TagCreate")),
            ok: (201, "application/json", "TagEnvelope"),
            errors: &[409, 413],
        },
        Op::PatchTag => OpDoc {
            summary: "Rename or recolour a tag; renaming onto an existing name merges the two \
                      (the answer is the surviving tag).",
            tag: "tags",
            query: &[TENANT],
            body: Some(("application/json", "TagPatch")),
            ok: (200, "application/json", "TagEnvelope"),
            errors: &[413],
        },
        Op::DeleteTag => OpDoc {
            summary: "Delete a tag: it is taken off every image.",
            tag: "tags",
            query: &[TENANT],
            body: None,
            ok: (200, "application/json", "Deleted"),
            errors: &[],
        },
        Op::TagImages | Op::UntagImages => OpDoc {
            summary: "Put the tag on (POST) or take it off (DELETE) 1-1000 images at once, all \
                      or none.",
            tag: "tags",
            query: &[TENANT],
            body: Some(("application/json", "AlbumImageIds")),
            ok: (200, "application/json", "TagBatchResult"),
            errors: &[413],
        },
        Op::ToggleTag => OpDoc {
            summary: "The tag on the image if it was off, off if it was on.",
            tag: "tags",
            query: &[TENANT],
            body: None,
            ok: (200, "application/json", "TagToggled"),
            errors: &[],
        },
        Op::Folders => OpDoc {
            summary: "Browse a storage prefix: its subfolders (with counts, newest time and a \
                      cover) and its own images, by name.",
            tag: "library",
            query: &[
                TENANT,
                Param {
                    name: "path",
                    schema: r#"{"type":"string","maxLength":1024}"#,
                    description: "A storage prefix like `sd/2024` (\"\" or absent: the root)",
                    required: false,
                },
                PAGE,
                Param {
                    name: "per_page",
                    schema: r#"{"type":"integer","minimum":1,"maximum":200,"default":50}"#,
                    description: "Images per page",
                    required: false,
                },
                Param {
                    name: "sort",
                    schema: r#"{"type":"string","enum":["name","created_desc","created_asc"]}"#,
                    description: "Image order (default: by name)",
                    required: false,
                },
            ],
            body: None,
            ok: (200, "application/json", "FolderListing"),
            errors: &[],
        },
        Op::LibraryStatus => OpDoc {
            summary: "The library indexer's progress: files seen, indexed, unchanged, removed, \
                      failed (with reasons), rate and ETA.",
            tag: "library",
            query: &[],
            body: None,
            ok: (200, "application/json", "LibraryStatus"),
            errors: &[],
        },
        Op::LibraryRescan => OpDoc {
            summary: "Scan the library roots now (after a running scan ends).",
            tag: "library",
            query: &[],
            body: None,
            ok: (202, "application/json", "LibraryStatus"),
            errors: &[409],
        },
        Op::ListImages => OpDoc {
            summary: "Search the tenant's images, paged by page number or by cursor.",
            tag: "images",
            query: &[
                TENANT_ALL,
                Param {
                    name: "tag",
                    schema: TAGS,
                    description: "Images with every one of these tags (repeat or comma-separate)",
                    required: false,
                },
                Param {
                    name: "any_tag",
                    schema: TAGS,
                    description: "Images carrying at least one of these tags",
                    required: false,
                },
                Param {
                    name: "not_tag",
                    schema: TAGS,
                    description: "Images carrying none of these tags",
                    required: false,
                },
                Param {
                    name: "q",
                    schema: r#"{"type":"string"}"#,
                    description: "Case-insensitive text in the file name, key, description, tags \
                                  or generation info",
                    required: false,
                },
                ORIENTATION,
                Param {
                    name: "format",
                    schema: r#"{"type":"string","enum":["jpeg","png","gif","webp","avif","heic","jxl"]}"#,
                    description: "Only images stored in this format (case-insensitive)",
                    required: false,
                },
                Param {
                    name: "owner",
                    schema: r#"{"type":"string"}"#,
                    description: "Only images uploaded with this `X-User-Id`",
                    required: false,
                },
                Param {
                    name: "private",
                    schema: r#"{"type":"boolean"}"#,
                    description: "Only private (true) or public (false) images; also 1/0, yes/no, \
                                  on/off",
                    required: false,
                },
                Param {
                    name: "album_id",
                    schema: r#"{"type":"string"}"#,
                    description: "Only images in this album (alias `albumId`)",
                    required: false,
                },
                Param {
                    name: "sort",
                    schema: r#"{"type":"string","enum":["created_desc","created_asc","random",
                        "name"],"default":"created_desc"}"#,
                    description: "Result order (`name`: by storage key; `random` and `name` \
                                  have no cursor)",
                    required: false,
                },
                Param {
                    name: "folder",
                    schema: r#"{"type":"string","maxLength":1024}"#,
                    description: "Only images under this storage prefix (`sd/2024`)",
                    required: false,
                },
                Param {
                    name: "recursive",
                    schema: r#"{"type":"boolean","default":true}"#,
                    description: "With `folder`: also its subfolders' images",
                    required: false,
                },
                Param {
                    name: "regex",
                    schema: r#"{"type":"string","minLength":1,"maxLength":256}"#,
                    description: "A regex (RE2 syntax, case-insensitive, linear time) over the \
                                  storage key and the generation text (`parameters`, ComfyUI \
                                  `prompt`); at most 20,000 matches",
                    required: false,
                },
                Param {
                    name: "path_only",
                    schema: r#"{"type":"boolean","default":false}"#,
                    description: "`regex` looks at the storage key only",
                    required: false,
                },
                Param {
                    name: "model",
                    schema: r#"{"type":"string","maxLength":200}"#,
                    description: "Generation model name contains this (any case)",
                    required: false,
                },
                Param {
                    name: "sampler",
                    schema: r#"{"type":"string","maxLength":200}"#,
                    description: "Generation sampler is this (any case)",
                    required: false,
                },
                Param {
                    name: "seed",
                    schema: r#"{"type":"string","maxLength":200}"#,
                    description: "Generation seed is this",
                    required: false,
                },
                Param {
                    name: "lora",
                    schema: r#"{"type":"string","maxLength":200}"#,
                    description: "A LoRA of this name was used (any case)",
                    required: false,
                },
                Param {
                    name: "source",
                    schema: r#"{"type":"string","enum":["upload","indexed"]}"#,
                    description: "Uploads only, or library files only",
                    required: false,
                },
                PAGE,
                Param {
                    name: "per_page",
                    schema: r#"{"type":"integer","minimum":1,"maximum":200,"default":20}"#,
                    description: "Items per page (not with `cursor`/`limit`)",
                    required: false,
                },
                CURSOR,
                Param {
                    name: "limit",
                    schema: r#"{"type":"integer","minimum":1,"maximum":200,"default":20}"#,
                    description: "Items per page in cursor mode (not with `page`/`per_page`)",
                    required: false,
                },
            ],
            body: None,
            ok: (200, "application/json", "ImageList"),
            errors: &[],
        },
        Op::Upload => OpDoc {
            summary: "Upload one or more images (all or none are stored).",
            tag: "images",
            query: &[TENANT],
            body: Some(("multipart/form-data", "Upload")),
            ok: (201, "application/json", "UploadResult"),
            errors: &[408, 409, 413, 415, 422, 502, 504, 507],
        },
        Op::GetImage => OpDoc {
            summary: "Read an image's record.",
            tag: "images",
            query: &[TENANT],
            body: None,
            ok: (200, "application/json", "Image"),
            errors: &[],
        },
        Op::PatchImage => OpDoc {
            summary: "Update an image's tags, description, privacy or expiry.",
            tag: "images",
            query: &[TENANT],
            body: Some(("application/json", "ImagePatch")),
            ok: (200, "application/json", "Image"),
            errors: &[413],
        },
        Op::DeleteImage => OpDoc {
            summary: "Delete an image (and its object unless another image shares it).",
            tag: "images",
            query: &[TENANT],
            body: None,
            ok: (200, "application/json", "Message"),
            errors: &[502, 504],
        },
        Op::Tags => OpDoc {
            summary: "List the tenant's tags with counts, or (`detail`) with their image ids.",
            tag: "tags",
            query: &[
                TENANT_ALL,
                Param {
                    name: "detail",
                    schema: r#"{"type":"boolean","default":false}"#,
                    description: "Answer a map of tag → image ids instead of counts; also 1/0, \
                                  yes/no, on/off",
                    required: false,
                },
                Param {
                    name: "q",
                    schema: r#"{"type":"string"}"#,
                    description: "Only tags whose name contains this (any case)",
                    required: false,
                },
                Param {
                    name: "limit",
                    schema: r#"{"type":"integer","minimum":1,"maximum":10000}"#,
                    description: "At most this many tags, by name",
                    required: false,
                },
            ],
            body: None,
            ok: (200, "application/json", "Tags"),
            errors: &[],
        },
        Op::Random => OpDoc {
            summary: "The URL of a random public image of the configured tenant, as text.",
            tag: "random",
            // Every other `/img` transform parameter is also accepted (validated, passed on).
            query: &[
                Param {
                    name: "tag",
                    schema: TAGS,
                    description: "Only images carrying every one of these tags",
                    required: false,
                },
                ORIENTATION,
                Param {
                    name: "preset",
                    schema: r#"{"type":"string"}"#,
                    description: "A named transform preset for the URL",
                    required: false,
                },
                W,
                H,
                FIT,
                Param {
                    name: "fm",
                    schema: r#"{"type":"string","enum":["auto","jpeg","jpg","baseline-jpeg","png",
                        "webp","avif","json"]}"#,
                    description: "Output format (aliases `f`, `format`); without it, the one the \
                                  `Accept` header takes is made explicit",
                    required: false,
                },
                Param {
                    name: "q",
                    schema: r#"{"type":"string"}"#,
                    description: "Quality: 1-100, or high, medium-high, medium-low, low",
                    required: false,
                },
            ],
            body: None,
            ok: (200, "text/plain", ""),
            errors: &[],
        },
        Op::CreateKey => OpDoc {
            summary: "Create an API key (its secret is shown this once).",
            tag: "keys",
            query: &[],
            body: Some(("application/json", "KeyCreate")),
            ok: (201, "application/json", "KeyEnvelope"),
            errors: &[413],
        },
        Op::ListKeys => OpDoc {
            summary: "List API keys (every tenant's for admins of tenant default), no secrets.",
            tag: "keys",
            query: &[],
            body: None,
            ok: (200, "application/json", "KeyList"),
            errors: &[],
        },
        Op::DeleteKey => OpDoc {
            summary: "Delete an API key.",
            tag: "keys",
            query: &[],
            body: None,
            ok: (200, "application/json", "Message"),
            errors: &[],
        },
        Op::ValidateKey => OpDoc {
            summary: "Check a key given in a header or as `{\"key\"}`.",
            tag: "keys",
            query: &[],
            // body optional (read only when Content-Length is set and not 0; a header key wins)
            body: Some(("application/json", "KeyValidate")),
            ok: (200, "application/json", "KeyValidation"),
            errors: &[413],
        },
        Op::Cleanup => OpDoc {
            summary: "Delete every expired image now.",
            tag: "admin",
            query: &[],
            body: None,
            ok: (200, "application/json", "Cleanup"),
            errors: &[502, 504],
        },
        Op::Config => OpDoc {
            summary: "The effective configuration, secrets removed.",
            tag: "admin",
            query: &[],
            body: None,
            ok: (200, "application/json", "Config"),
            errors: &[],
        },
        Op::Stats => OpDoc {
            summary: "Counts of the tenant's images and tags, its quota, and server counters.",
            tag: "admin",
            query: &[TENANT_ALL],
            body: None,
            ok: (200, "application/json", "Stats"),
            errors: &[],
        },
        Op::ListAlbums => OpDoc {
            summary: "List the tenant's albums, paged by page number or by cursor.",
            tag: "albums",
            query: &[TENANT_ALL, PAGE, PER_PAGE, CURSOR, LIMIT],
            body: None,
            ok: (200, "application/json", "AlbumList"),
            errors: &[],
        },
        Op::CreateAlbum => OpDoc {
            summary: "Create an album.",
            tag: "albums",
            query: &[TENANT],
            body: Some(("application/json", "AlbumCreate")),
            ok: (201, "application/json", "AlbumEnvelope"),
            errors: &[409, 413],
        },
        Op::GetAlbum => OpDoc {
            summary: "Read an album (with a read key, or an album token).",
            tag: "albums",
            query: &[TENANT, ALBUM_TOKEN],
            body: None,
            ok: (200, "application/json", "AlbumEnvelope"),
            errors: &[410],
        },
        Op::PatchAlbum => OpDoc {
            summary: "Update an album's name, description, visibility or cover.",
            tag: "albums",
            query: &[TENANT],
            body: Some(("application/json", "AlbumPatch")),
            ok: (200, "application/json", "AlbumEnvelope"),
            errors: &[413],
        },
        Op::DeleteAlbum => OpDoc {
            summary: "Delete an album, its membership and its tokens (never its images).",
            tag: "albums",
            query: &[TENANT],
            body: None,
            ok: (200, "application/json", "Deleted"),
            errors: &[],
        },
        Op::AlbumImages => OpDoc {
            summary: "List an album's images in album order (with a read key, or an album token).",
            tag: "albums",
            query: &[TENANT, ALBUM_TOKEN, PAGE, PER_PAGE],
            body: None,
            ok: (200, "application/json", "AlbumImages"),
            errors: &[410],
        },
        Op::AddAlbumImages => OpDoc {
            summary: "Add images to an album (all or nothing).",
            tag: "albums",
            query: &[TENANT],
            body: Some(("application/json", "AlbumImageIds")),
            ok: (200, "application/json", "AlbumEnvelope"),
            errors: &[413],
        },
        Op::RemoveAlbumImages => OpDoc {
            summary: "Remove images from an album (all or nothing).",
            tag: "albums",
            query: &[TENANT],
            body: Some(("application/json", "AlbumImageIds")),
            ok: (200, "application/json", "AlbumEnvelope"),
            errors: &[413],
        },
        Op::OrderAlbumImages => OpDoc {
            summary: "Reorder an album: these images first, in this order, the others after them as they were (all or nothing).",
            tag: "albums",
            query: &[TENANT],
            body: Some(("application/json", "AlbumImageIds")),
            ok: (200, "application/json", "AlbumEnvelope"),
            errors: &[413],
        },
        Op::ListAlbumTokens => OpDoc {
            summary: "List an album's access tokens (prefixes, never the secrets).",
            tag: "albums",
            query: &[TENANT],
            body: None,
            ok: (200, "application/json", "AlbumTokenList"),
            errors: &[],
        },
        Op::CreateAlbumToken => OpDoc {
            summary: "Create an album access token (its secret is shown this once).",
            tag: "albums",
            query: &[TENANT],
            // body optional
            body: Some(("application/json", "AlbumTokenCreate")),
            ok: (201, "application/json", "AlbumTokenEnvelope"),
            errors: &[413],
        },
        Op::DeleteAlbumToken => OpDoc {
            summary: "Revoke an album access token.",
            tag: "albums",
            query: &[TENANT],
            body: None,
            ok: (200, "application/json", "Deleted"),
            errors: &[],
        },
        Op::CreateShare => OpDoc {
            summary: "Create a share link for an image (its token is shown this once).",
            tag: "shares",
            query: &[TENANT],
            // body optional
            body: Some(("application/json", "ShareCreate")),
            ok: (201, "application/json", "ShareEnvelope"),
            errors: &[413],
        },
        Op::ListShares => OpDoc {
            summary: "List an image's share links (never the tokens).",
            tag: "shares",
            query: &[TENANT],
            body: None,
            ok: (200, "application/json", "ShareList"),
            errors: &[],
        },
        Op::ImageAlbums => OpDoc {
            summary: "List the albums holding an image.",
            tag: "albums",
            query: &[TENANT],
            body: None,
            ok: (200, "application/json", "ImageAlbums"),
            errors: &[],
        },
        Op::DeleteShare => OpDoc {
            summary: "Revoke a share link.",
            tag: "shares",
            query: &[],
            body: None,
            ok: (200, "application/json", "Deleted"),
            errors: &[],
        },
        Op::GetQuota => OpDoc {
            summary: "A tenant's usage against its quotas.",
            tag: "tenants",
            query: &[],
            body: None,
            ok: (200, "application/json", "QuotaEnvelope"),
            errors: &[],
        },
        Op::SetQuota => OpDoc {
            summary: "Set a tenant's own quotas (0 = no limit, null = the configured default).",
            tag: "tenants",
            query: &[],
            body: Some(("application/json", "QuotaPut")),
            ok: (200, "application/json", "QuotaEnvelope"),
            errors: &[413],
        },
        Op::GetAvatar => OpDoc {
            summary: "A user's avatar: a 302 to its `/img` URL, or a generated PNG identicon.",
            tag: "avatars",
            // The other `/img` transform parameters are passed on too (unless only signed or
            // preset URLs are served).
            query: &[
                Param {
                    name: "tenant",
                    schema: r#"{"type":"string","pattern":"^[a-z0-9_-]{1,64}$"}"#,
                    description: "Admins of every tenant: act on this tenant (`*` = all tenants \
                                  on listings); without a key: the avatar's tenant (default \
                                  `default`)",
                    required: false,
                },
                Param {
                    name: "w",
                    schema: r#"{"type":"integer","minimum":1}"#,
                    description: "Width (alias `width`); an identicon is 16-512 pixels, default \
                                  `avatars.size`",
                    required: false,
                },
                H,
                FIT,
                Param {
                    name: "v",
                    schema: r#"{"type":"string"}"#,
                    description: "Cache buster (default: the avatar's update time)",
                    required: false,
                },
            ],
            body: None,
            ok: (200, "image/*", ""),
            errors: &[],
        },
        Op::PutAvatar => OpDoc {
            summary: "Store or replace a user's avatar (POST /avatars names it by externalUserId).",
            tag: "avatars",
            query: &[TENANT],
            body: Some(("multipart/form-data", "AvatarUpload")),
            ok: (200, "application/json", "AvatarEnvelope"),
            errors: &[408, 409, 413, 415, 422, 502, 504, 507],
        },
        Op::DeleteAvatar => OpDoc {
            summary: "Remove a user's avatar.",
            tag: "avatars",
            query: &[TENANT],
            body: None,
            ok: (200, "application/json", "Success"),
            errors: &[502, 504],
        },
        Op::ListWebhooks => OpDoc {
            summary: "List the tenant's webhook endpoints.",
            tag: "webhooks",
            query: &[],
            body: None,
            ok: (200, "application/json", "WebhookList"),
            errors: &[],
        },
        Op::CreateWebhook => OpDoc {
            summary: "Create a webhook endpoint (its signing secret is shown this once).",
            tag: "webhooks",
            query: &[],
            // Read with optional_json_body, but `url` is required: an empty body is a 400.
            body: Some(("application/json", "WebhookCreate")),
            ok: (201, "application/json", "WebhookCreated"),
            errors: &[413],
        },
        Op::GetWebhook => OpDoc {
            summary: "Read a webhook endpoint.",
            tag: "webhooks",
            query: &[],
            body: None,
            ok: (200, "application/json", "WebhookEnvelope"),
            errors: &[],
        },
        Op::PatchWebhook => OpDoc {
            summary: "Update a webhook endpoint's URL, events, state or description.",
            tag: "webhooks",
            query: &[],
            // body optional
            body: Some(("application/json", "WebhookPatch")),
            ok: (200, "application/json", "WebhookEnvelope"),
            errors: &[413],
        },
        Op::DeleteWebhook => OpDoc {
            summary: "Delete a webhook endpoint and its deliveries.",
            tag: "webhooks",
            query: &[],
            body: None,
            ok: (200, "application/json", "Success"),
            errors: &[],
        },
        Op::RotateWebhookSecret => OpDoc {
            summary: "Give a webhook endpoint a new secret (the old one signs for a while).",
            tag: "webhooks",
            query: &[],
            body: None,
            ok: (200, "application/json", "WebhookRotated"),
            errors: &[],
        },
        Op::TestWebhook => OpDoc {
            summary: "Send a `webhook.test` event to this endpoint.",
            tag: "webhooks",
            query: &[],
            body: None,
            ok: (201, "application/json", "DeliveryEnvelope"),
            errors: &[409],
        },
        Op::WebhookDeliveries => OpDoc {
            summary: "List a webhook endpoint's deliveries, newest first.",
            tag: "webhooks",
            query: &[
                Param {
                    name: "status",
                    schema: r#"{"type":"string","enum":["pending","delivered","failed"]}"#,
                    description: "Only deliveries in this state",
                    required: false,
                },
                Param {
                    name: "limit",
                    schema: r#"{"type":"integer","minimum":1,"maximum":200,"default":50}"#,
                    description: "Deliveries per page",
                    required: false,
                },
                Param {
                    name: "before",
                    schema: r#"{"type":"integer"}"#,
                    description: "The `next_before` of the previous page (a delivery's `seq`)",
                    required: false,
                },
            ],
            body: None,
            ok: (200, "application/json", "DeliveryList"),
            errors: &[],
        },
        Op::Redeliver => OpDoc {
            summary: "Send a delivery's message again, now.",
            tag: "webhooks",
            query: &[],
            body: None,
            ok: (201, "application/json", "DeliveryEnvelope"),
            errors: &[409],
        },
        Op::Login => OpDoc {
            summary: "Log in with an email and a password.",
            tag: "auth",
            query: &[],
            body: Some(("application/json", "Login")),
            ok: (200, "application/json", "Tokens"),
            errors: &[413],
        },
        Op::Refresh => OpDoc {
            summary: "Trade a refresh token for a new token pair.",
            tag: "auth",
            query: &[],
            body: Some(("application/json", "Refresh")),
            ok: (200, "application/json", "Tokens"),
            errors: &[413],
        },
        Op::Logout => OpDoc {
            summary: "End the session of an access token, or of a refresh token in the body.",
            tag: "auth",
            query: &[],
            // body optional (used only when no valid access token is presented)
            body: Some(("application/json", "Refresh")),
            ok: (200, "application/json", "Success"),
            errors: &[413],
        },
        Op::Me => OpDoc {
            summary: "The logged-in user.",
            tag: "auth",
            query: &[],
            body: None,
            ok: (200, "application/json", "UserEnvelope"),
            errors: &[],
        },
        Op::PatchMe => OpDoc {
            summary: "Rename the logged-in user.",
            tag: "auth",
            query: &[],
            body: Some(("application/json", "MePatch")),
            ok: (200, "application/json", "UserEnvelope"),
            errors: &[413],
        },
        Op::ChangePassword => OpDoc {
            summary: "Change the logged-in user's password (other sessions end).",
            tag: "auth",
            query: &[],
            body: Some(("application/json", "PasswordChange")),
            ok: (200, "application/json", "Success"),
            errors: &[413],
        },
        Op::Register => OpDoc {
            summary: "Open an account and its own tenant (when registration is open).",
            tag: "auth",
            query: &[],
            body: Some(("application/json", "Register")),
            ok: (202, "application/json", "Message"),
            errors: &[413],
        },
        Op::Audit => OpDoc {
            summary: "The audit log of administrators' writes, newest first.",
            tag: "audit",
            query: &[
                Param {
                    name: "limit",
                    schema: r#"{"type":"integer","minimum":1,"maximum":500,"default":50}"#,
                    description: "Entries per page",
                    required: false,
                },
                Param {
                    name: "before",
                    schema: r#"{"type":"string","pattern":"^-?[0-9]+_"}"#,
                    description: "The `next_before` of the previous page",
                    required: false,
                },
            ],
            body: None,
            ok: (200, "application/json", "AuditList"),
            errors: &[],
        },
        Op::ListUsers => OpDoc {
            summary: "List the accounts (of the caller's tenant; of every tenant for an admin of tenant default).",
            tag: "auth",
            query: &[],
            body: None,
            ok: (200, "application/json", "UserList"),
            errors: &[],
        },
        Op::PatchUser => OpDoc {
            summary: "Disable or enable an account (disabling ends its sessions at once).",
            tag: "auth",
            query: &[],
            body: Some(("application/json", "UserPatch")),
            ok: (200, "application/json", "UserEnvelope"),
            errors: &[409, 413],
        },
        Op::ListTenants => OpDoc {
            summary: "List every tenant with its usage.",
            tag: "tenants",
            query: &[],
            body: None,
            ok: (200, "application/json", "TenantList"),
            errors: &[],
        },
        Op::CreateTenant => OpDoc {
            summary: "Create a tenant.",
            tag: "tenants",
            query: &[],
            body: Some(("application/json", "TenantCreate")),
            ok: (201, "application/json", "TenantEnvelope"),
            errors: &[409, 413],
        },
        Op::GetTenant => OpDoc {
            summary: "Read a tenant.",
            tag: "tenants",
            query: &[],
            body: None,
            ok: (200, "application/json", "TenantEnvelope"),
            errors: &[],
        },
        Op::PatchTenant => OpDoc {
            summary: "Update a tenant's name, state, quotas or rate limits.",
            tag: "tenants",
            query: &[],
            body: Some(("application/json", "TenantPatch")),
            ok: (200, "application/json", "TenantEnvelope"),
            errors: &[413],
        },
    }
}
