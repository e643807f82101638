//! The dashboard's page, script and style, embedded in the binary (no CDN, no npm:
//! plain JavaScript drawing inline SVG).

/// The page (the same for `/` and `/runs/ID`; the script reads the path).
pub const INDEX_HTML: &str = include_str!("assets/index.html");
/// The script.
pub const APP_JS: &str = include_str!("assets/app.js");
/// The style.
pub const APP_CSS: &str = include_str!("assets/app.css");

/// The login form (`failed`: after a wrong token). Its body holds nothing of the run.
pub fn login_page(failed: bool) -> String {
    let note = if failed {
        "<p class=\"bad\">Wrong token.</p>"
    } else {
        ""
    };
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>wsload: sign in</title></head>\
<body style=\"font-family:sans-serif;max-width:28em;margin:4em auto\"><h1>wsload dashboard</h1>\
<p>This dashboard needs the coordinator's control token.</p>{note}\
<form method=\"post\" action=\"/login\"><input type=\"password\" name=\"token\" autofocus \
placeholder=\"token\" style=\"width:100%\"><p><button type=\"submit\">Sign in</button></p></form></body></html>"
    )
}
