//! The pages' scripts and styles, compiled into the binary. Each is gzipped once at start-up
//! and served under `/assets/{version}/{name}`, where the version is a hash of every asset (and
//! the branding), so a URL never changes meaning and can be cached for a year.

use std::io::Write;

use flate2::{Compression, write::GzEncoder};
use sha2::{Digest, Sha256};

use crate::config::BrandingSettings;

/// One file as served: its bytes, gzipped bytes and type.
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub plain: Vec<u8>,
    pub gzip: Vec<u8>,
}

/// Every asset of the pages, plus the version that names this set.
pub struct Assets {
    pub version: String,
    pub files: Vec<Asset>,
    /// The host-page script (`/embed.js`), served at a fixed URL.
    pub embed: Asset,
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// The static files, by the name they are served under.
const FILES: [(&str, &str, &str); 12] = [
    (
        "pages.css",
        CSS,
        include_str!("../../../assets/pages/pages.css"),
    ),
    (
        "common.js",
        JS,
        include_str!("../../../assets/pages/common.js"),
    ),
    (
        "slots.js",
        JS,
        include_str!("../../../assets/pages/slots.js"),
    ),
    ("book.js", JS, include_str!("../../../assets/pages/book.js")),
    (
        "manage.js",
        JS,
        include_str!("../../../assets/pages/manage.js"),
    ),
    (
        "contact.js",
        JS,
        include_str!("../../../assets/pages/contact.js"),
    ),
    (
        "patient.js",
        JS,
        include_str!("../../../assets/pages/patient.js"),
    ),
    (
        "booked.js",
        JS,
        include_str!("../../../assets/pages/booked.js"),
    ),
    (
        "timetable.js",
        JS,
        include_str!("../../../assets/pages/timetable.js"),
    ),
    ("join.js", JS, include_str!("../../../assets/pages/join.js")),
    (
        "offer.js",
        JS,
        include_str!("../../../assets/pages/offer.js"),
    ),
    (
        "waitlist.js",
        JS,
        include_str!("../../../assets/pages/waitlist.js"),
    ),
];

const EMBED_JS: &str = include_str!("../../../assets/pages/embed.js");

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    // Writing to a Vec cannot fail; fall back to an empty body (served uncompressed) if it does.
    if encoder.write_all(bytes).is_err() {
        return Vec::new();
    }
    encoder.finish().unwrap_or_default()
}

fn asset(name: &'static str, content_type: &'static str, plain: Vec<u8>) -> Asset {
    let gzip = gzip(&plain);
    Asset {
        name,
        content_type,
        plain,
        gzip,
    }
}

/// The clinic's colours as CSS custom properties (a file, so the CSP needs no inline style).
fn theme_css(branding: &BrandingSettings) -> String {
    let accent = expand_hex(branding.accent_color.trim());
    format!(
        ":root{{--accent:{accent};--accent-text:{}}}\n",
        text_on(&accent)
    )
}

/// `#abc` → `#aabbcc`; anything else as given (validated at load time).
fn expand_hex(color: &str) -> String {
    let hex = color.trim_start_matches('#');
    if hex.len() == 3 {
        let doubled: String = hex.chars().flat_map(|c| [c, c]).collect();
        format!("#{doubled}")
    } else {
        format!("#{hex}")
    }
}

/// Black or white, whichever reads better on `accent` (WCAG relative luminance).
fn text_on(accent: &str) -> &'static str {
    let hex = accent.trim_start_matches('#');
    let channel = |i: usize| {
        let v = f64::from(u8::from_str_radix(hex.get(i..i + 2).unwrap_or("00"), 16).unwrap_or(0))
            / 255.0;
        if v <= 0.04045 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        }
    };
    let luminance = 0.2126 * channel(0) + 0.7152 * channel(2) + 0.0722 * channel(4);
    // Contrast with white is 1.05/(L+0.05), with black (L+0.05)/0.05: pick the larger.
    if 1.05 / (luminance + 0.05) >= (luminance + 0.05) / 0.05 {
        "#ffffff"
    } else {
        "#0b0c0c"
    }
}

impl Assets {
    pub fn new(branding: &BrandingSettings) -> Self {
        let mut files: Vec<Asset> = FILES
            .iter()
            .map(|(name, ty, text)| asset(name, ty, text.as_bytes().to_vec()))
            .collect();
        files.push(asset("theme.css", CSS, theme_css(branding).into_bytes()));
        let mut hasher = Sha256::new();
        for f in &files {
            hasher.update(f.name.as_bytes());
            hasher.update(&f.plain);
        }
        let version = hex::encode(&hasher.finalize()[..6]);
        let embed = asset("embed.js", JS, EMBED_JS.as_bytes().to_vec());
        Self {
            version,
            files,
            embed,
        }
    }

    pub fn get(&self, name: &str) -> Option<&Asset> {
        self.files.iter().find(|f| f.name == name)
    }

    /// The URL path of an asset of this version.
    pub fn url(&self, name: &str) -> String {
        format!("/assets/{}/{name}", self.version)
    }

    /// A strong validator for an asset's content.
    pub fn etag(asset: &Asset) -> String {
        format!("\"{}\"", hex::encode(&Sha256::digest(&asset.plain)[..8]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accent_colour_gets_readable_text() {
        assert_eq!(text_on("#0f766e"), "#ffffff");
        assert_eq!(text_on("#ffdd00"), "#0b0c0c");
        assert_eq!(expand_hex("#abc"), "#aabbcc");
    }

    #[test]
    fn scripts_and_styles_stay_under_sixty_kilobytes_compressed() {
        let assets = Assets::new(&BrandingSettings::default());
        let total: usize =
            assets.files.iter().map(|f| f.gzip.len()).sum::<usize>() + assets.embed.gzip.len();
        assert!(total < 60 * 1024, "{total} bytes compressed");
        assert!(assets.files.iter().all(|f| !f.gzip.is_empty()));
    }
}
