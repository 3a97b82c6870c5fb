//! `multipart/form-data` upload bodies → `UploadForm`: files and the optional fields, every value
//! validated, the field named in each error. Streams with `multer`; a file over the byte limit or
//! a body over the total limit is refused while streaming, never buffered whole.
//!
//! Accepted file fields: `file`, `files`, `files[]`, `image`, `images`, `images[]` (the clients of
//! ImageFlow, PicHub, Infinite Image Browsing and FileHarbor). Unknown text fields are ignored.

use super::fields;
use crate::error::Error;
use crate::storage::origin::sanitize_key;
use bytes::Bytes;
use futures_util::Stream;

/// Limits of one upload request.
#[derive(Debug, Clone, Copy)]
pub struct UploadLimits {
    pub max_file_bytes: u64,
    pub max_files: usize,
}

/// One uploaded file.
#[derive(Debug, Clone)]
pub struct UploadFile {
    pub field: String,
    pub filename: String,
    pub bytes: Vec<u8>,
}

/// A parsed upload.
#[derive(Debug, Clone, Default)]
pub struct UploadForm {
    pub files: Vec<UploadFile>,
    pub tags: Vec<String>,
    pub expiry_minutes: Option<u64>,
    pub description: String,
    pub is_private: bool,
    /// Wanted storage key (sanitised), relative to the tenant's folder.
    pub key: Option<String>,
    pub remove_exif: bool,
    /// An album of the tenant the new images join (`album_id`).
    pub album: Option<String>,
    /// `auto_rename=false`: keep the client's file name in the storage key (sanitised; a taken
    /// name gets a numeric suffix). Default true: a random key.
    pub keep_name: bool,
    /// FileHarbor's `externalUserId` (the avatar upload's user).
    pub external_user: Option<String>,
    /// `format` (or `convertToWebP=true`) and `quality`: store the upload converted.
    pub convert: Option<(crate::pipeline::format::ImageFormat, Option<u8>)>,
}

const FILE_FIELDS: &[&str] = &["file", "files", "files[]", "image", "images", "images[]"];
/// Largest text field (description, tags...).
const MAX_TEXT_FIELD: usize = 64 << 10;

/// Parse a multipart body. `content_type` is the request's header.
pub async fn parse<S, E>(
    content_type: &str,
    body: S,
    lim: UploadLimits,
) -> Result<UploadForm, Error>
where
    S: Stream<Item = Result<Bytes, E>> + Send + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
{
    let boundary = multer::parse_boundary(content_type).map_err(|_| {
        Error::UnsupportedMediaType("uploads must be multipart/form-data with a boundary".into())
    })?;
    let whole = lim
        .max_file_bytes
        .saturating_mul(lim.max_files as u64)
        .saturating_add(1 << 20);
    let constraints =
        multer::Constraints::new().size_limit(multer::SizeLimit::new().whole_stream(whole));
    let mut mp = multer::Multipart::with_constraints(body, boundary, constraints);
    let mut form = UploadForm::default();
    let mut private: Option<bool> = None;
    let mut public: Option<bool> = None;
    let mut format: Option<Option<crate::pipeline::format::ImageFormat>> = None;
    let mut quality: Option<u8> = None;
    let mut to_webp = false;
    while let Some(mut field) = mp.next_field().await.map_err(multipart_err)? {
        let name = field.name().unwrap_or_default().to_string();
        if FILE_FIELDS.contains(&name.as_str()) {
            if form.files.len() >= lim.max_files {
                return Err(Error::bad_param(
                    &name,
                    format!("at most {} files per upload", lim.max_files),
                ));
            }
            let filename = field
                .file_name()
                .map(clean_filename)
                .unwrap_or_else(|| "upload".into());
            let mut bytes = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(multipart_err)? {
                if (bytes.len() + chunk.len()) as u64 > lim.max_file_bytes {
                    return Err(Error::PayloadTooLarge(format!(
                        "file {filename} is over the {} byte limit",
                        lim.max_file_bytes
                    )));
                }
                bytes.extend_from_slice(&chunk);
            }
            form.files.push(UploadFile {
                field: name,
                filename,
                bytes,
            });
            continue;
        }
        let mut text = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(multipart_err)? {
            if text.len() + chunk.len() > MAX_TEXT_FIELD {
                return Err(Error::bad_param(&name, "field value is too long"));
            }
            text.extend_from_slice(&chunk);
        }
        let value = String::from_utf8(text)
            .ok()
            .filter(|v| !v.contains('\0'))
            .ok_or_else(|| {
                Error::bad_param(&name, "field value is not UTF-8 text (or holds NUL)")
            })?;
        let value = value.trim();
        match name.as_str() {
            "tags" | "tags[]" => form.tags.extend(fields::parse_tags(value, &name)?),
            "expiry_minutes" | "expiryMinutes" => {
                let m: u64 = value.parse().map_err(|_| {
                    Error::bad_param(&name, "must be a whole number of minutes (0 = never)")
                })?;
                form.expiry_minutes = fields::expiry_minutes(m, &name)?;
            }
            "description" => {
                form.description = fields::description(value, &name)?;
            }
            "is_private" | "isPrivate" => private = Some(crate::util::query::flag(value, &name)?),
            "is_public" | "isPublic" => public = Some(crate::util::query::flag(value, &name)?),
            "externalUserId" | "external_user_id" => form.external_user = Some(value.to_string()),
            "format" => {
                format = match value {
                    "auto" | "" => Some(None),
                    v => Some(Some(
                        crate::pipeline::format::ImageFormat::from_name(v)
                            .filter(|f| f.can_encode())
                            .ok_or_else(|| {
                                Error::bad_param(&name, "must be auto, jpeg, png, webp or avif")
                            })?,
                    )),
                }
            }
            "quality" => {
                let q: u8 = value
                    .parse()
                    .ok()
                    .filter(|q| (1..=100).contains(q))
                    .ok_or_else(|| Error::bad_param(&name, "must be an integer in 1..=100"))?;
                quality = Some(q);
            }
            "convertToWebP" | "convert_to_webp" => {
                to_webp = crate::util::query::flag(value, &name)?
            }
            "auto_rename" | "autoRename" => {
                form.keep_name = !crate::util::query::flag(value, &name)?
            }
            "remove_exif" | "removeExif" => {
                form.remove_exif = crate::util::query::flag(value, &name)?
            }
            "album_id" | "albumId" => {
                if value.is_empty() || value.len() > 128 {
                    return Err(Error::bad_param(&name, "must be an album id"));
                }
                form.album = Some(value.to_string());
            }
            "key" => {
                let k = sanitize_key(value).map_err(|e| Error::bad_param("key", e.to_string()))?;
                form.key = Some(k);
            }
            _ => {}
        }
    }
    form.is_private = private.or(public.map(|p| !p)).unwrap_or(false);
    // An explicit format wins over convertToWebP; "auto" keeps what was uploaded.
    form.convert = match (format, to_webp) {
        (Some(Some(f)), _) => Some((f, quality)),
        (Some(None), _) => None,
        (None, true) => Some((crate::pipeline::format::ImageFormat::Webp, quality)),
        (None, false) => None,
    };
    if form.files.is_empty() {
        return Err(Error::bad_param(
            "file",
            "no file: send it in a field named file, files[], images[] or image",
        ));
    }
    if form.key.is_some() && form.files.len() > 1 {
        return Err(Error::bad_param(
            "key",
            "a wanted key needs exactly one file",
        ));
    }
    Ok(form)
}

fn multipart_err(e: multer::Error) -> Error {
    match e {
        multer::Error::FieldSizeExceeded { .. } | multer::Error::StreamSizeExceeded { .. } => {
            Error::PayloadTooLarge("upload is over the size limit".into())
        }
        other => Error::BadRequest {
            param: None,
            message: format!("malformed multipart body: {other}"),
        },
    }
}

/// A file name for display: its last path segment, control characters removed, at most 255 bytes.
fn clean_filename(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let mut s: String = base.chars().filter(|c| !c.is_control()).collect();
    while s.len() > 255 {
        s.pop();
    }
    if s.is_empty() {
        "upload".into()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_in_every_spelling() {
        assert_eq!(
            fields::parse_tags("Cats, dogs ,", "tags").unwrap(),
            ["cats", "dogs"]
        );
        assert_eq!(
            fields::parse_tags(r#"["A","b"]"#, "tags").unwrap(),
            ["a", "b"]
        );
        assert!(fields::parse_tags("[1,2]", "tags").is_err());
        assert!(fields::parse_tags(&"x".repeat(65), "tags").is_err());
    }

    #[test]
    fn filenames_lose_their_path() {
        assert_eq!(clean_filename("../../etc/passwd"), "passwd");
        assert_eq!(clean_filename("C:\\x\\cat.jpg"), "cat.jpg");
        assert_eq!(clean_filename("a\nb.png"), "ab.png");
    }
}
