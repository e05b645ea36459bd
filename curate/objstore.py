"""Object-store URIs (``s3://bucket/prefix``, also on S3-compatible servers): credentials and clear errors.

pyarrow's S3 filesystem (the AWS C++ SDK) takes its settings from the same
environment variables as the AWS CLI and boto3, so curate adds no options of
its own: :data:`S3_ENV` names them. They are read in every process that opens
the store, so Ray workers are handed the driver's values (:func:`worker_env`).
"""

from __future__ import annotations

import os
from urllib.parse import parse_qs, urlsplit

# what the AWS SDK reads: keys, temporary-session token, endpoint of an S3-compatible server, region, profiles
S3_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_EC2_METADATA_DISABLED",
)


def worker_env() -> dict[str, str]:
    """The S3 settings of this process, for workers that open the store themselves.

    A Ray worker inherits the environment of the raylet, fixed when Ray started (or set on
    another machine), not this process's: without these it would talk to the wrong
    endpoint or with no credentials.
    """
    return {k: os.environ[k] for k in S3_ENV if k in os.environ}


def endpoint_override(uri: str) -> str | None:
    """The URI's own ``endpoint_override`` option as a URL (the scheme from its ``scheme`` option, else http)."""
    query = parse_qs(urlsplit(uri).query)
    url = query.get("endpoint_override", [None])[0]
    if url and "://" not in url:
        url = f"{query.get('scheme', ['http'])[0]}://{url}"
    return url


def endpoint(uri: str) -> str:
    """The server a store URI talks to, as the AWS SDK picks it (URI option, then environment, then AWS)."""
    for value in (endpoint_override(uri), os.environ.get("AWS_ENDPOINT_URL_S3"),
                  os.environ.get("AWS_ENDPOINT_URL")):
        if value:
            return value
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "its default region"
    return f"AWS S3 ({region})"


def access_error(uri: str, exc: BaseException) -> str:
    """What a user sees when the object store refuses or cannot be reached: what, where, what to set."""
    detail = " ".join(str(exc).split()).rstrip(".")
    low = detail.lower()
    if "bucket" in low and "not found" in low:
        todo = "create the bucket first (curate creates the prefix, never the bucket), or fix the URI"
    elif "network_connection" in low or "could not connect" in low or "could not resolve" in low:
        todo = ("start the server, or point AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL at the one that runs "
                "(for AWS itself leave both unset and set AWS_REGION)")
    else:
        todo = ("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary "
                "credentials) to keys this bucket accepts, AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL to the "
                "server's URL for an S3-compatible server, and AWS_REGION")
    return f"cannot open the store {uri!r} at {endpoint(uri)}: {detail}. To fix: {todo}, then re-run"
