"""The ``openai_compatible`` teacher: an OpenAI-compatible server of your own (vLLM, llama.cpp, Ollama), or several
servers of one model with calls spread over them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from distilloop._extras import require
from distilloop.annotators.openai_teacher import OpenAITeacher
from distilloop.annotators.remote import check_base_url
from distilloop.annotators.sdk_errors import never_sent
from distilloop.annotators.servers import ServerPool
from distilloop.errors import ConfigError, TeacherError


@dataclass
class OpenAICompatibleTeacher(OpenAITeacher):
    """``kind = "openai_compatible"``: an OpenAI-compatible server of your own (vLLM, llama.cpp, Ollama).

    ``base_url`` is required (ending in ``/v1``); no key is needed unless ``api_key_env`` names one; the price
    is zero unless given (a local server costs no dollars; its tokens still count against the budget).

    ``base_urls`` instead lists several servers of the same model (one per GPU node): calls are spread over
    them (:class:`~distilloop.annotators.servers.ServerPool`) under the teacher's one rate limiter and the
    campaign's one budget. A call whose server cannot be reached goes to the next server within the same
    recorded call (nothing was sent, so nothing was paid); a call whose connection dropped after it was sent is
    recorded as a failed attempt, charged at its expected cost like any dropped call (the server may have
    generated it), and retried on another server. The dead server is tried again after
    ``server_retry_s`` seconds (doubling while it stays dead). When none can be reached the call fails as
    retryable and the ensemble retries it after the first server's wait.
    """

    api_key_env: str = ""
    base_urls: list[str] = field(default_factory=list)
    server_retry_s: float = 30.0

    kind = "openai_compatible"
    provider = "the OpenAI-compatible server"
    default_key_env = ""

    def __post_init__(self) -> None:
        where = f"teacher {self.name}"
        urls = self.base_urls
        if urls:
            if not isinstance(urls, list) or not all(isinstance(u, str) and u.startswith("http") for u in urls):
                raise ConfigError(f"{where}: base_urls must be a list of server URLs, e.g. base_urls = "
                                  f"[\"http://10.0.0.1:8080/v1\", \"http://10.0.0.2:8080/v1\"], got {urls!r}")
            for u in urls:  # a key, where one is set, never goes to another machine in clear text
                check_base_url(where, u, sends_key=bool(self.api_key_env))
            if len(set(urls)) != len(urls):
                raise ConfigError(f"{where}: base_urls names a server twice ({urls}); list each once")
            if self.base_url:
                raise ConfigError(f"{where}: give base_url (one server) or base_urls (several), not both")
            if self.mode == "batch":
                raise ConfigError(f"{where}: base_urls spreads live calls over servers; batch mode is for "
                                  "a provider's batch API: set mode = \"live\"")
            self.base_url = urls[0]
        if not self.base_url:
            raise ConfigError(f"{where}: an openai_compatible teacher needs base_url, e.g. "
                              "base_url = \"http://127.0.0.1:8080/v1\" (or base_urls for several servers)")
        r = self.server_retry_s
        if isinstance(r, bool) or not isinstance(r, int | float) or r <= 0:
            raise ConfigError(f"{where}: server_retry_s must be a number > 0 (seconds), got {r!r}")
        if self.price is None:
            self.price = {"input": 0.0, "output": 0.0}
        super().__post_init__()
        self.pool = ServerPool(urls or [self.base_url], retry_s=float(r))
        self._clients: dict[str, Any] = {}

    def hash_extra(self) -> Any:
        extra = super().hash_extra()
        if self.base_urls:  # replicas: the answer does not depend on which server gave it
            extra["base_url"] = sorted(self.base_urls)
        return extra

    def _client_for(self, url: str) -> Any:
        if url == self.base_url:
            return self.client()
        if url not in self._clients:
            openai = require("openai", "openai", purpose=f"teacher {self.name}")
            self._clients[url] = openai.AsyncOpenAI(api_key=self._api_key(), base_url=url, max_retries=0,
                                                    timeout=self.timeout_s, http_client=self.http_client)
        return self._clients[url]

    async def _send(self, body: dict[str, Any]) -> dict[str, Any]:
        if not self.base_urls:
            return await super()._send(body)
        sdk = self._sdk
        for url in self.pool.candidates():
            self.pool.begin(url)
            try:
                data = await self._request(self._client_for(url), body)
            except sdk.APIConnectionError as exc:  # refused, dropped or timed out: the server is taken out
                self.pool.end(url, ok=False, error=f"{type(exc).__name__}: {exc.__cause__ or exc}")
                if never_sent(exc):  # no connection at all: nothing was generated, the next server is asked
                    continue
                # sent, and lost on the way back: it may have been generated (and billed), so the attempt is
                # recorded and charged like any dropped call, and the retry goes to another server
                raise self._error(exc, sdk) from None
            except TeacherError:
                self.pool.end(url, ok=True)
                raise
            except Exception as exc:  # the server answered (an HTTP error, a bad body): it is up
                self.pool.end(url, ok=True)
                raise self._error(exc, sdk) from None
            self.pool.end(url, ok=True)
            return data
        err = TeacherError(f"teacher {self.name}: none of its {len(self.base_urls)} servers can be reached "
                           f"({self.pool.describe()}); the call is retried when the first is due again",
                           retryable=True)
        err.retry_after = max(0.5, self.pool.retry_in())  # type: ignore[attr-defined]
        raise err

    async def aclose(self) -> None:
        clients, self._clients = self._clients, {}
        if self.http_client is None:
            for c in clients.values():
                await c.close()
        await super().aclose()
