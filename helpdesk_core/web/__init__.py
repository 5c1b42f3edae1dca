"""The web app: admin settings, the staff desk and the requester portal (Starlette + Jinja2).

Build it with :func:`helpdesk_core.web.app.create_app` and serve it with uvicorn
(``helpdesk web``). Every page calls only :mod:`helpdesk_core.services` with the signed-in user as
actor; each request opens one database session and owns its transaction (commit on success).
"""
