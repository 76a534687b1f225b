"""A wire-compatible fake of the OpenAI and Anthropic HTTP APIs, for tests and benchmarks without network:
:class:`FakeLLMAPI` (routing, faults, latency, the fake "model") with one module per provider, served in-process
(an ``httpx2.MockTransport``) or on 127.0.0.1 (:func:`serve`)."""

from distilloop.testing.fake_api.http import FakeServer, serve
from distilloop.testing.fake_api.server import FakeLLMAPI

__all__ = ["FakeLLMAPI", "FakeServer", "serve"]
