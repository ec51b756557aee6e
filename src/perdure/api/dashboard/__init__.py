"""The web dashboard served by ``perdure serve`` at ``/``: executions, the inbox of callbacks, functions.

Server-rendered HTML (Jinja2 templates in ``templates/``) with htmx and Pico CSS vendored in
``static/`` (each beside its license), so an installed Perdure serves it with no build step.
"""

from perdure.api.dashboard.site import Dashboard, is_dashboard_path

__all__ = ["Dashboard", "is_dashboard_path"]
