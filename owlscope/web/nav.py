"""The left navigation of a project. A page built later adds nothing here unless it needs a new
top-level entry: its route (e.g. `/project/{id}/traces`) already has its item."""

from __future__ import annotations

from dataclasses import dataclass

from owlscope.accounts.orgs import role_at_least
from owlscope.storage.oltp.models import Role


@dataclass(frozen=True)
class NavItem:
    key: str
    label: str
    path: str  # appended to /project/{project_id}
    icon: str  # a name known to the `icon` macro in _macros.html
    section: str = "main"
    min_role: Role = Role.VIEWER


PROJECT_NAV: tuple[NavItem, ...] = (
    NavItem("dashboard", "Dashboard", "", "dashboard"),
    NavItem("dashboards", "Custom dashboards", "/dashboards", "layers"),
    NavItem("traces", "Traces", "/traces", "traces", "observability"),
    NavItem("sessions", "Sessions", "/sessions", "sessions", "observability"),
    NavItem("users", "Users", "/users", "users", "observability"),
    NavItem("scores", "Scores", "/scores", "scores", "observability"),
    NavItem("queues", "Annotation queues", "/annotation-queues", "layers", "observability"),
    NavItem("prompts", "Prompts", "/prompts", "prompts", "engineering"),
    NavItem("datasets", "Datasets", "/datasets", "datasets", "engineering"),
    NavItem("evals", "Evaluators", "/evals", "evals", "engineering"),
    NavItem("playground", "Playground", "/playground", "playground", "engineering", Role.MEMBER),
    NavItem("settings", "Settings", "/settings", "settings", "project"),
)

SECTION_LABELS = {"main": "", "observability": "Observability", "engineering": "Engineering", "project": ""}


def nav_item(key: str) -> NavItem:
    for item in PROJECT_NAV:
        if item.key == key:
            return item
    raise KeyError(key)


def project_nav(project_id: str, path: str, active: str | None = None, role: Role | str | None = None
                ) -> list[dict]:
    """The items the member's `role` may open (all when no role is given), with their href and
    whether they are the current page (an explicit `active` key wins; otherwise the longest
    matching path prefix)."""
    base = f"/project/{project_id}"
    if active is None:
        best = -1
        for item in PROJECT_NAV:
            href = base + item.path
            if (path == href or path.startswith(href + "/")) and len(href) > best:
                active, best = item.key, len(href)
    return [
        {
            "key": item.key, "label": item.label, "href": base + item.path, "icon": item.icon,
            "section": item.section, "section_label": SECTION_LABELS.get(item.section, ""),
            "active": item.key == active,
        }
        for item in PROJECT_NAV
        if role is None or role_at_least(role, item.min_role)
    ]


ORG_NAV: tuple[NavItem, ...] = (
    NavItem("org-settings", "Organization", "/settings", "building"),
    NavItem("org-members", "Members", "/settings/members", "users"),
)


def org_nav(org_id: str, active: str | None = None) -> list[dict]:
    base = f"/organization/{org_id}"
    return [
        {"key": item.key, "label": item.label, "href": base + item.path, "icon": item.icon,
         "section": "organization", "section_label": "", "active": item.key == active}
        for item in ORG_NAV
    ]
