"""Who may do what: the one table every feature asks (docs/roles.md shows the same table)."""
from __future__ import annotations

import enum

from services.models import Role


class Permission(str, enum.Enum):
    VIEW_SUBSCRIPTIONS = "view_subscriptions"
    VIEW_ORDERS = "view_orders"
    VIEW_OWN_CASES = "view_own_cases"
    OPEN_CASES = "open_cases"
    ASK_KNOWLEDGE = "ask_knowledge"
    CHANGE_QUANTITY = "change_quantity"
    ORDER = "order"
    MANAGE_CART = "manage_cart"
    VIEW_PRICES = "view_prices"
    VIEW_INVOICES = "view_invoices"
    APPROVE_ORDERS = "approve_orders"
    CHANGE_AUTO_RENEW = "change_auto_renew"
    CANCEL = "cancel"
    MANAGE_USERS = "manage_users"
    VIEW_ALL_CASES = "view_all_cases"
    VIEW_COMPANY_ORDERS = "view_company_orders"


_VIEW = frozenset(
    {
        Permission.VIEW_SUBSCRIPTIONS,
        Permission.VIEW_ORDERS,
        Permission.VIEW_OWN_CASES,
        Permission.OPEN_CASES,
        Permission.ASK_KNOWLEDGE,
    }
)
_MODIFY = _VIEW | {Permission.CHANGE_QUANTITY, Permission.ORDER, Permission.MANAGE_CART}
_FINANCE = _MODIFY | {
    Permission.VIEW_PRICES,
    Permission.VIEW_INVOICES,
    Permission.APPROVE_ORDERS,
    Permission.VIEW_COMPANY_ORDERS,
}
_ADMIN = frozenset(Permission)

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.VIEW: _VIEW,
    Role.MODIFY: frozenset(_MODIFY),
    Role.FINANCE: frozenset(_FINANCE),
    Role.ADMIN: _ADMIN,
}


def can(role: Role, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS[role]


def roles_with(permission: Permission) -> list[Role]:
    return [role for role, granted in ROLE_PERMISSIONS.items() if permission in granted]
