"""SDK failures (the ``openai`` and ``anthropic`` SDKs, or what a server sent back) as
:class:`~distilloop.errors.TeacherError`: whether a retry may help, what the server asked to wait, whether the call
may have been billed, and a message a user can act on."""

from __future__ import annotations

import email.utils
import time
from typing import Any

from distilloop.core.secrets import redact
from distilloop.errors import TeacherError

RETRYABLE_STATUS = {408, 409, 429, 529}
#: the longest a server's retry-after is obeyed (``retry-after: 3600`` must not park a campaign for an hour)
MAX_RETRY_AFTER_S = 60.0


class NotAnAPIResponse(Exception):
    """A 200 whose body is not the API's JSON (a proxy's login page, a web server at ``base_url``): the SDKs hand
    such a body back as a string."""


def response_dict(resp: Any) -> dict[str, Any]:
    """An SDK response as a dict; a body that was not JSON is a :class:`NotAnAPIResponse` with its first words."""
    if isinstance(resp, str | bytes):
        text = resp.decode(errors="replace") if isinstance(resp, bytes) else resp
        raise NotAnAPIResponse(" ".join(text.split())[:120] or "(empty)")
    return resp.model_dump() if hasattr(resp, "model_dump") else dict(resp)


def retry_after_seconds(headers: Any) -> float | None:
    """Seconds from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date), if the server sent one,
    at most :data:`MAX_RETRY_AFTER_S`."""
    if headers is None:
        return None
    try:
        ms = headers.get("retry-after-ms")
        if ms is not None:
            return min(MAX_RETRY_AFTER_S, max(0.0, float(ms) / 1000))
        ra = headers.get("retry-after")
        if ra is None:
            return None
        try:
            return min(MAX_RETRY_AFTER_S, max(0.0, float(ra)))
        except ValueError:
            when = email.utils.parsedate_to_datetime(ra)
            return min(MAX_RETRY_AFTER_S, max(0.0, when.timestamp() - time.time()))
    except (TypeError, ValueError, OverflowError):
        return None


def never_sent(exc: BaseException) -> bool:
    """A connection error that happened before the request was sent (no connection at all): never billed."""
    cause = exc.__cause__ or exc.__context__
    return type(cause).__name__ in ("ConnectError", "ConnectTimeout")


def map_sdk_error(exc: BaseException, sdk: Any, *, teacher: str, provider: str, secrets: tuple[str | None, ...],
                  timeout_s: float, key_env: str = "", key_set: bool = True) -> TeacherError:
    """Turn an exception of the ``openai``/``anthropic`` SDK (or a broken response) into a TeacherError; a failure
    after the request was sent (a timeout, a dropped connection, a broken 200) is ``maybe_billed``. ``key_env``:
    the variable the key was read from ("" where none is configured: a server of one's own sent no key);
    ``key_set``: whether that variable held one."""
    status = getattr(exc, "status_code", None)
    retry_after = None
    maybe_billed = False
    if isinstance(exc, sdk.APIStatusError):
        retryable = status in RETRYABLE_STATUS or (status is not None and status >= 500)
        retry_after = retry_after_seconds(getattr(exc.response, "headers", None))
        body = getattr(exc, "message", "") or str(exc)
        unauthorized = (f" (check the API key in ${key_env})" if key_env and key_set else
                        f" (${key_env} is not set: export the server's API key there)" if key_env else
                        " (the server wants an API key and none is configured: name the environment variable that "
                        f"holds it with api_key_env in teacher {teacher}'s [[teachers]] entry)")
        hint = {401: unauthorized, 403: " (the key lacks access)",
                404: " (check the model name and base_url)"}.get(status or 0, "")
        message = f"HTTP {status} from {provider}{hint}: {body}"
    elif isinstance(exc, sdk.APITimeoutError):
        retryable, maybe_billed = True, True
        message = f"{provider} did not answer within {timeout_s:g} s (timeout_s)"
    elif isinstance(exc, sdk.APIConnectionError):
        retryable, maybe_billed = True, not never_sent(exc)
        message = f"cannot reach {provider}: {exc.__cause__ or exc}"
    elif isinstance(exc, NotAnAPIResponse):  # retrying gets the same page
        retryable = False
        v1 = " (an OpenAI-compatible server's ends in /v1)" if "OpenAI" in provider else ""
        message = (f"{provider} answered with a page, not the API's JSON (it begins: {exc}); check base_url{v1} and "
                   "that no proxy or login page stands in the way")
    elif isinstance(exc, sdk.APIResponseValidationError | ValueError):  # JSONDecodeError is a ValueError
        retryable, maybe_billed = True, True
        message = f"malformed response from {provider}: {type(exc).__name__}: {exc}"
    else:
        retryable, message = False, f"{provider} call failed: {type(exc).__name__}: {exc}"
    return TeacherError(redact(f"teacher {teacher}: {message}", *secrets)[:2000], retryable=retryable, status=status,
                        retry_after=retry_after, maybe_billed=maybe_billed)


def shape_error(teacher: str, provider: str, data: Any, exc: BaseException) -> TeacherError:
    """A response that is JSON but not the API's answer: the error its body carries where it has one (a proxy's or
    gateway's 200 with ``{"error": {"message": ...}}``), else what was missing."""
    err = data.get("error") if isinstance(data, dict) else None
    if err:
        said = (err.get("message") or err) if isinstance(err, dict) else err
        return TeacherError(f"teacher {teacher}: {provider} answered with an error instead of an answer: "
                            f"{str(said)[:300]}", retryable=True)
    return TeacherError(f"teacher {teacher}: unexpected response shape from {provider}: {exc!r}", retryable=True)

