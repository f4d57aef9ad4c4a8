"""DescribeUserScramCredentials (50) and AlterUserScramCredentials (51): SCRAM users at run time.

What ``kafka-configs --alter --add-config 'SCRAM-SHA-512=[password=...]'
--entity-type users`` sends: the client salts and hashes the password, the
broker keeps the stored and server keys (RFC 5802) in the cluster's credential
store, which SASL/SCRAM logins read (kstub/security.py). Users given with
``kstub.sasl.users`` are in the same store. Kept in memory only (not in
``--data-dir``). Validation and error codes follow Kafka's (iterations between
4096 and 16384, one change per user and request, deleting or describing a
missing credential: RESOURCE_NOT_FOUND).
"""

from __future__ import annotations

from kstub.protocol import ApiKey, Container, ErrorCode
from kstub.security import SCRAM_MECHANISMS, scram_keys

from .base import Body, Context, Op, handles

_BY_NUMBER = {number: name for name, number in SCRAM_MECHANISMS.items()}
MIN_ITERATIONS, MAX_ITERATIONS = 4096, 16384


def _credentials_of(ctx: Context, user: str) -> list[Body]:
    store = ctx.cluster.scram_credentials
    return [
        {"mechanism": number, "iterations": store[name][user][3]}
        for name, number in SCRAM_MECHANISMS.items()
        if user in store.get(name, {})
    ]


@handles(ApiKey.DESCRIBE_USER_SCRAM_CREDENTIALS)
async def describe_user_scram_credentials(ctx: Context, req: Container) -> Body:
    store = ctx.cluster.scram_credentials
    if not ctx.authorize_cluster(Op.DESCRIBE):
        error = {"error_code": ErrorCode.CLUSTER_AUTHORIZATION_FAILED, "error_message": None}
        results = [{"user": "", "credential_infos": [], **error} for _ in req.users or []]
        return {"throttle_time_ms": 0, **error, "results": results}
    if req.users is None or not req.users:
        users = sorted({user for users in store.values() for user in users})
        results = [
            {"user": u, "error_code": 0, "error_message": None, "credential_infos": _credentials_of(ctx, u)}
            for u in users
        ]
        return {"throttle_time_ms": 0, "error_code": 0, "error_message": None, "results": results}
    names = [user.name for user in req.users]
    results: list[Body] = []
    for name in dict.fromkeys(names):
        infos: list[Body] = []
        if names.count(name) > 1:
            error = ErrorCode.DUPLICATE_RESOURCE
            message: str | None = (
                f"Cannot describe SCRAM credentials for the same user twice in a single request: {name}"
            )
        else:
            infos = _credentials_of(ctx, name)
            error, message = ErrorCode.NONE, ""
            if not infos:
                error = ErrorCode.RESOURCE_NOT_FOUND
                message = f"Attempt to describe a user credential that does not exist: {name}"
        results.append({"user": name, "error_code": error, "error_message": message, "credential_infos": infos})
    # Kafka lists the failures first, then the users found by name
    results.sort(key=lambda r: (r["error_code"] == ErrorCode.NONE, r["user"] if r["error_code"] == 0 else ""))
    return {"throttle_time_ms": 0, "error_code": 0, "error_message": None, "results": results}


@handles(ApiKey.ALTER_USER_SCRAM_CREDENTIALS)
async def alter_user_scram_credentials(ctx: Context, req: Container) -> Body:
    store = ctx.cluster.scram_credentials
    changes = [("delete", d) for d in req.deletions] + [("upsert", u) for u in req.upsertions]
    if not ctx.authorize_cluster(Op.ALTER):
        error = ErrorCode.CLUSTER_AUTHORIZATION_FAILED
        users = sorted({c.name for _, c in changes})
        return {
            "throttle_time_ms": 0,
            "results": [{"user": u, "error_code": error, "error_message": None} for u in users],
        }
    seen: dict[str, int] = {}  # Kafka allows one change per user and request, whatever the mechanism
    for _, change in changes:
        seen[change.name] = seen.get(change.name, 0) + 1
    errors: dict[str, tuple[ErrorCode, str]] = {}
    for kind, change in changes:
        name = change.name
        if name in errors:
            continue
        mechanism = _BY_NUMBER.get(change.mechanism)
        if not name:
            errors[name] = (ErrorCode.UNACCEPTABLE_CREDENTIAL, "Username must not be empty")
        elif mechanism is None:
            errors[name] = (ErrorCode.UNSUPPORTED_SASL_MECHANISM, "Unknown SCRAM mechanism")
        elif kind == "delete" and name not in store.get(mechanism, {}):
            errors[name] = (
                ErrorCode.RESOURCE_NOT_FOUND,
                "Attempt to delete a user credential that does not exist",
            )
        elif seen[name] > 1:
            errors[name] = (
                ErrorCode.DUPLICATE_RESOURCE,
                "A user credential cannot be altered twice in the same request",
            )
        elif kind == "upsert" and change.iterations < MIN_ITERATIONS:
            errors[name] = (ErrorCode.UNACCEPTABLE_CREDENTIAL, "Too few iterations")
        elif kind == "upsert" and change.iterations > MAX_ITERATIONS:
            errors[name] = (ErrorCode.UNACCEPTABLE_CREDENTIAL, "Too many iterations")
    for kind, change in changes:
        if change.name in errors:
            continue
        mechanism = _BY_NUMBER[change.mechanism]
        users = store.setdefault(mechanism, {})
        if kind == "delete":
            users.pop(change.name, None)
        else:
            stored_key, server_key = scram_keys(mechanism, bytes(change.salted_password))
            users[change.name] = (bytes(change.salt), stored_key, server_key, change.iterations)
    if any(change.name not in errors for _, change in changes):
        ctx.cluster.store.save_metadata(ctx.cluster)  # kept with --data-dir, as Kafka keeps them in its metadata
    results = []
    for name in dict.fromkeys(change.name for _, change in changes):
        error, message = errors.get(name, (ErrorCode.NONE, None))
        results.append({"user": name, "error_code": error, "error_message": message})
    return {"throttle_time_ms": 0, "results": results}
