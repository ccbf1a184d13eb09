"""API token authentication that reads the user's staff role in the same query as the token.

Every API view asks for the staff role (the permission check, the merchant scope): DRF's own token
lookup joins the user only, so each request paid a second query for the role. Here one query reads
token, user, staff role and merchant, and leaves the role where `o2o.tenancy.staff_role_of` looks for
it, so the rest of the request reads it for free.

Every API request pays for this lookup, so on PostgreSQL it is one prepared statement (o2o/prepared.py)
whose rows become model instances directly: compiling the ORM query for it cost more CPU than DRF's
whole lookup. Elsewhere (SQLite in development) the ORM reads the same rows.
"""

from functools import cache

from django.contrib.auth import get_user_model
from django.db import connection
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token

from merchants.models import Merchant, StaffRole

from .prepared import PreparedStatement


@cache
def _lookup() -> tuple[PreparedStatement, list]:
    """The statement, and per model (token, user, role, merchant) its field names and slice of the row."""
    user_model = get_user_model()
    parts, columns, start = [], [], 0
    for model, alias in ((Token, "t"), (user_model, "u"), (StaffRole, "r"), (Merchant, "m")):
        fields = model._meta.concrete_fields
        columns += [f'{alias}."{field.column}"' for field in fields]
        parts.append((model, [field.attname for field in fields], slice(start, start + len(fields))))
        start += len(fields)
    # Table and column names come from the models' meta; the key is a parameter.
    sql = (
        f"SELECT {', '.join(columns)} FROM {Token._meta.db_table} t"  # noqa: S608
        f" JOIN {user_model._meta.db_table} u ON u.id = t.user_id"
        f" LEFT JOIN {StaffRole._meta.db_table} r ON r.user_id = u.id"
        f" LEFT JOIN {Merchant._meta.db_table} m ON m.id = r.merchant_id"
        " WHERE t.key = %(key)s"
    )
    return PreparedStatement("o2o_api_token", sql, types={"key": "text"}), parts


def _token_with_role(key: str):
    """The token with its user, the user's staff role (None without one) on `_o2o_staff_role`, or None."""
    if connection.vendor != "postgresql":
        token = Token.objects.select_related("user__staff_role__merchant").filter(key=key).first()
        if token is not None:
            token.user._o2o_staff_role = getattr(token.user, "staff_role", None)
        return token
    statement, parts = _lookup()
    with connection.cursor() as cursor:
        rows = statement.fetchall(cursor, {"key": key})
    if not rows:
        return None
    (token_model, token_fields, token_slice), (user_model, user_fields, user_slice), roles, merchants = parts
    row = rows[0]
    token = token_model.from_db(connection.alias, token_fields, row[token_slice])
    user = user_model.from_db(connection.alias, user_fields, row[user_slice])
    token.user = user
    role = None
    if row[roles[2]][0] is not None:  # the role's id: the left join found one
        role = StaffRole.from_db(connection.alias, roles[1], row[roles[2]])
        role.merchant = Merchant.from_db(connection.alias, merchants[1], row[merchants[2]])
        role.user = user
    user._o2o_staff_role = role
    return token


class StaffTokenAuthentication(TokenAuthentication):
    def authenticate_credentials(self, key):
        token = _token_with_role(key)
        if token is None or not token.user.is_active:
            # DRF's refusal, in its words (and translations): one more query, for a bad token only.
            return super().authenticate_credentials(key)
        user = token.user
        role = user._o2o_staff_role
        # As staff_role_of reads it: a role counts only while its merchant is active.
        if role is not None and not role.merchant.is_active:
            user._o2o_staff_role = None
        return user, token
