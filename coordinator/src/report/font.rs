//! The embedded chart font (DejaVu Sans, licence in `coordinator/assets/fonts/`).
//!
//! Charts never look up system fonts: the TTF is compiled into the binary and
//! registered with plotters' `ab_glyph` text renderer under the family name
//! [`FAMILY`], which is also the family plotters uses for default labels.

use plotters::style::FontStyle;

use super::ReportError;

/// Family name every chart text uses.
pub const FAMILY: &str = "sans-serif";

/// DejaVu Sans 2.37 (Bitstream Vera licence + public domain changes).
const DEJAVU_SANS: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// Registers the embedded font for every style the charts use. Idempotent.
pub fn register() -> Result<(), ReportError> {
    for style in [FontStyle::Normal, FontStyle::Bold] {
        plotters::style::register_font(FAMILY, style, DEJAVU_SANS).map_err(|_| ReportError::Font)?;
    }
    Ok(())
}
