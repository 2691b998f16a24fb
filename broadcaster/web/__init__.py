"""The officer's desk: server-rendered pages (FastAPI + Jinja2), Vietnamese by default, English
switchable, usable on a 360-px phone, with no CDN and no build step (docs/desk.md lists the pages).

A face like `api/`: it stands on `broadcaster/services/` (no queries here), and is mounted by
`api.app.create_app` into the API's app (`desk.mount_desk`), on the same listener and behind the same
`Gate` (Host, Origin, who is asking), so the desk and the API share sessions, the CSRF token, the
sign-in throttle and the audit log.

Adding a page
-------------
1. A route module in `web/routes/` with `router = page_router()` (routes answer pages, even their
   refusals, and stay out of the API's OpenAPI document); add the router to `ROUTERS` in `desk.py`.
2. The route takes the person it needs, which also gives it everything else:

       @router.get("/compose")
       def compose_page(page: Composer) -> Response:            # Reader | Composer | Approver | Admin
           drafts = list_drafts(page.svc, by=page.person)          # page.svc: the Services
           return page.render("compose.html", drafts=drafts)       # page.lang, page.t("key"), page.today

   `Reader`/`Composer`/`Approver`/`Admin` (page.py) send whoever is not signed in to /login?next=...,
   whoever holds a one-time password to /password, and refuse a role without the permission (403
   page). On a POST they also check the form's `csrf_token` field (or an `X-CSRF-Token` header)
   with the API's `require()`. `Newcomer` is anyone signed in, one-time password included;
   `Visitor` is anyone at all (`page.who` is then None). `page.person` is the `Principal`.
3. A form: `{{ m.csrf() }}` inside it (`{% import "_macros.html" as m with context %}`). On bad input,
   catch the `LoaError` and render the form again with `error=page.message(exc)` (`{{ m.form_error(error) }}`)
   and `status=exc.status`; nothing is stored (the services validate before they write). On success
   `return page.redirect("/somewhere?notice=<key>")`: base.html shows i18n's `notice.<key>`.
   Anything else a route raises as `LoaError` becomes the error page; `raise Redirect(url)` a 303.
4. Templates in `web/templates/` extend "base.html" and fill its blocks: `title` (the page's name),
   `main` (the page), `head` (more stylesheets), `scripts` (page scripts:
   `<script src="{{ static_url('compose.js') }}" defer></script>`). Every template gets `t(key, **params)`,
   `lang`, `who`, `csrf_token`, `now`, `commune`, `here`; filters `local` (an instant, aware or ISO, in
   Asia/Ho_Chi_Minh: `x|local('datetime'|'seconds'|'time'|'date'|'short'|'day')`), `ago`, `ms` and
   `plain` (a stored value as people read it: an ISO instant in commune time, a list joined).
   Undefined variables are errors (StrictUndefined): pass what the template reads.
5. Words in `web/i18n.py`, the same key in "vi" and "en" (a test checks both, and every literal
   `t('...')` in the templates); refusals come from `broadcaster/messages.py` through `LoaError`.
6. The menu (`nav.py`'s NAV) already lists /compose, /approvals, /live, /lexicon and /slogans: an entry
   appears once a GET route with that exact path is mounted and the person's role may.
7. Scripts and styles are files in `web/static/` (served at /static/, fingerprinted by `static_url`):
   the pages' Content-Security-Policy (page.py, CSP) refuses inline scripts, inline styles and other
   sites. htmx 2 is loaded on every page (vendored in static/vendor/) and sends the CSRF token itself
   (`hx-headers` on <body>); `hx-on` and other eval'd attributes are off (allowEval false). Page
   scripts read the token from `<meta name="csrf-token">` for `fetch`.

Tests: tests/broadcaster/web/conftest.py starts the app on a free port with real services and a real
Chromium; its fixtures are described there (`desk`, `browser`, `page`, `sign_in`, `axe_check`, `screens`).
"""

from broadcaster.web.desk import mount_desk

__all__ = ["mount_desk"]
