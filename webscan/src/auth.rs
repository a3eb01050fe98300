//! Form login, logged-out detection and re-login.
//!
//! Why automatic: apps end sessions (timeouts, request budgets, a "revoke all sessions" button
//! the crawler may find), and a scan that silently continues logged out tests the login page a
//! thousand times. Every response is checked: a redirect to the login page or a 401 means the
//! session is gone; the scanner logs in again (once per lost session, however many tasks noticed)
//! and repeats the request. Fields are found in the login form: the password input, the text or
//! email input before it for the user name, hidden fields (CSRF tokens) sent as found.

use crate::error::{Result, WebscanError};
use crate::html;
use crate::http::{Request, Response};
use crate::inject::encode_pairs;
use crate::{Ctx, LoginConfig};
use std::sync::atomic::{AtomicU64, Ordering};
use url::Url;

/// Most re-logins in one scan (an app that logs out every request would otherwise double it).
const MAX_RELOGINS: u64 = 100;

/// Login state of a scan.
#[derive(Debug)]
pub struct Auth {
    cfg: LoginConfig,
    url: Url,
    generation: AtomicU64,
    relogins: AtomicU64,
    lock: tokio::sync::Mutex<()>,
}

/// The values of a login form filled in.
pub fn fill_login_form(
    form: &html::Form,
    username: &str,
    password: &str,
) -> Option<Vec<(String, String)>> {
    let pw_idx = form.fields.iter().position(|f| f.kind == "password")?;
    let user_idx = form.fields[..pw_idx]
        .iter()
        .rposition(|f| matches!(f.kind.as_str(), "text" | "email" | "tel" | ""))
        .or_else(|| {
            form.fields.iter().position(|f| {
                let n = f.name.to_ascii_lowercase();
                f.kind != "password"
                    && (n.contains("user") || n.contains("login") || n.contains("mail"))
            })
        });
    let mut out = Vec::new();
    for (i, f) in form.fields.iter().enumerate() {
        if i == pw_idx {
            out.push((f.name.clone(), password.to_owned()));
        } else if Some(i) == user_idx {
            out.push((f.name.clone(), username.to_owned()));
        } else if matches!(f.kind.as_str(), "checkbox" | "radio") && f.value.is_empty() {
            continue;
        } else {
            out.push((f.name.clone(), f.value.clone()));
        }
    }
    Some(out)
}

impl Auth {
    pub fn new(cfg: &LoginConfig, start: &Url) -> Result<Auth> {
        let url = start.join(&cfg.url).map_err(|e| WebscanError::BadUrl {
            url: cfg.url.clone(),
            reason: e.to_string(),
        })?;
        Ok(Auth {
            cfg: cfg.clone(),
            url,
            generation: AtomicU64::new(0),
            relogins: AtomicU64::new(0),
            lock: tokio::sync::Mutex::new(()),
        })
    }

    pub fn login_url(&self) -> &Url {
        &self.url
    }

    /// Counts logins; a task remembers it before a request to know whether someone else already
    /// logged in again since.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    pub fn relogins(&self) -> u64 {
        self.relogins.load(Ordering::Relaxed)
    }

    /// Whether `resp` (to a request for `url`) says the session is gone.
    pub fn is_logged_out(&self, url: &Url, resp: &Response) -> bool {
        if url.path() == self.url.path() {
            return false;
        }
        if resp.status == 401 {
            return true;
        }
        if (300..400).contains(&resp.status) {
            if let Some(loc) = resp.header("location").and_then(|l| url.join(l).ok()) {
                return loc.path() == self.url.path() && loc.origin() == self.url.origin();
            }
        }
        false
    }

    /// Logs in (fetch the form, fill it, post it); succeeds when the answer is not the form again.
    pub(crate) async fn login(&self, ctx: &Ctx) -> Result<()> {
        let fail = |reason: String| WebscanError::Login {
            url: self.url.to_string(),
            reason,
        };
        let page = ctx
            .client
            .send(&Request::get(self.url.clone()))
            .await
            .map_err(|e| fail(e.to_string()))?;
        let text = page.text();
        let doc = html::extract(&text);
        let form = doc
            .forms
            .iter()
            .find(|f| f.has_password())
            .ok_or_else(|| fail("no form with a password field on the login page".into()))?;
        let fields = fill_login_form(form, &self.cfg.username, &self.cfg.password)
            .ok_or_else(|| fail("no password field".into()))?;
        let action = match &form.action {
            Some(a) if !a.is_empty() => self.url.join(a).map_err(|e| fail(e.to_string()))?,
            _ => self.url.clone(),
        };
        let body = encode_pairs(&fields);
        let mut req = Request::get(action.clone());
        if form.method == "GET" {
            let mut u = action.clone();
            u.set_query(Some(&body));
            req.url = u;
        } else {
            req.method = "POST".into();
            req.body = body.into_bytes();
            req.headers.push((
                "Content-Type".into(),
                "application/x-www-form-urlencoded".into(),
            ));
        }
        let resp = ctx
            .client
            .send(&req)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let back_to_form = if (300..400).contains(&resp.status) {
            resp.header("location")
                .and_then(|l| action.join(l).ok())
                .is_some_and(|l| l.path() == self.url.path())
        } else {
            resp.status >= 400
                || html::extract(&resp.text())
                    .forms
                    .iter()
                    .any(html::Form::has_password)
        };
        if back_to_form {
            return Err(fail(format!(
                "the server answered {} with the login form again (wrong credentials?)",
                resp.status
            )));
        }
        self.generation.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// Logs in again unless another task already did since `seen_generation`.
    pub(crate) async fn relogin(&self, ctx: &Ctx, seen_generation: u64) -> Result<()> {
        let _g = self.lock.lock().await;
        if self.generation() != seen_generation {
            return Ok(());
        }
        if self.relogins.fetch_add(1, Ordering::SeqCst) >= MAX_RELOGINS {
            return Err(WebscanError::Login {
                url: self.url.to_string(),
                reason: format!("the session was lost more than {MAX_RELOGINS} times"),
            });
        }
        let keep: Vec<(String, String)> = ctx.cfg.cookies.clone();
        ctx.client.clear_cookies();
        for (k, v) in &keep {
            ctx.client.set_cookie(k, v);
        }
        self.login(ctx).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redirect_to_the_login_page_or_a_401_means_logged_out() {
        let start = Url::parse("http://h:1/").unwrap_or_else(|e| panic!("{e}"));
        let cfg = LoginConfig {
            url: "/login".into(),
            username: "u".into(),
            password: "p".into(),
        };
        let a = Auth::new(&cfg, &start).unwrap_or_else(|e| panic!("{e}"));
        let resp = |status: u16, loc: Option<&str>| Response {
            status,
            headers: loc
                .map(|l| vec![("location".to_owned(), l.to_owned())])
                .unwrap_or_default(),
            body: Vec::new(),
            truncated: false,
            elapsed: std::time::Duration::ZERO,
        };
        let page = Url::parse("http://h:1/notes").unwrap_or_else(|e| panic!("{e}"));
        assert!(a.is_logged_out(&page, &resp(302, Some("/login?next=%2Fnotes"))));
        assert!(a.is_logged_out(&page, &resp(401, None)));
        assert!(!a.is_logged_out(&page, &resp(302, Some("/account"))));
        assert!(!a.is_logged_out(&page, &resp(302, Some("http://other:1/login"))));
        assert!(!a.is_logged_out(&page, &resp(200, None)));
        // The login page itself redirecting back to the form is the login's business.
        let login = Url::parse("http://h:1/login").unwrap_or_else(|e| panic!("{e}"));
        assert!(!a.is_logged_out(&login, &resp(302, Some("/login"))));
    }

    #[test]
    fn login_form_fields_are_found() {
        let p = html::extract(
            r#"<form method=post action=/login><input type=hidden name=csrf_token value=T>
            <input name=username><input type=password name=password>
            <input type=checkbox name=remember><button name=go value=1>Go</button></form>"#,
        );
        let f = fill_login_form(&p.forms[0], "alice", "pw").unwrap_or_default();
        assert_eq!(
            f,
            vec![
                ("csrf_token".to_owned(), "T".to_owned()),
                ("username".into(), "alice".into()),
                ("password".into(), "pw".into()),
                ("go".into(), "1".into()),
            ]
        );
    }
}
