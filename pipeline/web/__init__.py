"""The web layer: the editors' desk, the reporters' form behind a unit link, and
the JSON API, as thin adapters over the stage functions the CLI calls.

    app.py         create_app(settings, store, clock): routers, middleware, handlers
    state.py       WebState shared by handlers; page rendering, audit rows
    auth.py        argon2 passwords, sessions, CSRF tokens, login rate limit
    desk.py        login, the queue, the draft page and its actions
    desk_plan.py   today's push (order, push now), the calendar and its iCalendar feed
    desk_admin.py  reports (digests, bulletins) and units (links, numbers)
    reporter.py    /r/<token>: the form, confirmation, the unit's own reports
    api.py         /api/: the same operations as JSON, one error shape
    forms.py       form fields, uploads to a temporary folder, intake validation
    queries.py     read models the pages need beyond pipeline.views
    planning.py    next push, calendar projection, iCalendar feed (pure over rows)
    files.py       a draft's article HTML and photos, bulletins (read-only)
    errors.py      the one JSON error shape and the Chinese error page
    middleware.py  request size limit (413) and security headers
    i18n.py        Chinese labels of states, actions, findings (errors: pipeline.messages)
    commands.py    CLI hooks: `user add`, `serve` (web + scheduler), `worker`
    options.py     their argparse entries, light enough for every CLI start

Import ``create_app`` from ``pipeline.web.app``: this package stays light so the CLI
can register the web commands without loading FastAPI.
"""
