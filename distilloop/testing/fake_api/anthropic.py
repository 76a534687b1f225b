"""The Anthropic side of the fake: messages (tool use, output_config JSON schema, cache_control with
cache-creation and cache-read usage) and message batches with an absolute ``results_url``."""

from __future__ import annotations

import json
import time
from typing import Any

from distilloop.testing.fake_api.base import CONTENT_FAULTS, FakeResponse, Generation, Routes


class AnthropicRoutes(Routes):
    def _anthropic_message(self, body: dict[str, Any], gen: Generation) -> FakeResponse:
        system = body.get("system")
        cache_write = cache_read = 0
        if self.prompt_cache and isinstance(system, list) and any(isinstance(b, dict) and b.get("cache_control")
                                                                  for b in system):
            if self._cache_hit("anthropic:" + self._flatten(system)):
                cache_read = gen.system_tokens
            else:
                cache_write = gen.system_tokens
        tools = body.get("tools") or []
        if gen.cut:  # the cap reached before any tool input
            content, stop = [], "max_tokens"
        elif tools:
            try:
                tool_input = json.loads(gen.text)
            except json.JSONDecodeError:
                tool_input = {"text": gen.text}
            content = [{"type": "tool_use", "id": self._id("toolu_"), "name": tools[0]["name"], "input": tool_input}]
            stop = "tool_use"
        else:
            content = [{"type": "text", "text": gen.text}]
            stop = "end_turn"
        return self._json(200, {
            "id": self._id("msg_"), "type": "message", "role": "assistant", "model": body.get("model", "fake"),
            "content": content, "stop_reason": stop, "stop_sequence": None,
            "usage": {"input_tokens": gen.tokens_in - cache_read - cache_write, "output_tokens": gen.tokens_out,
                      "cache_creation_input_tokens": cache_write, "cache_read_input_tokens": cache_read}})

    # -- files and batches ----------------------------------------------------------------------------

    def _anthropic_batch_create(self, body: dict[str, Any]) -> FakeResponse:
        bid = self._id("msgbatch_")
        reqs = body.get("requests") or []
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        obj = {"id": bid, "type": "message_batch", "processing_status": "in_progress",
               "request_counts": {"processing": len(reqs), "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0},
               "created_at": now, "expires_at": now, "ended_at": None, "archived_at": None,
               "cancel_initiated_at": None, "results_url": None}
        with self._lock:
            self.batches[bid] = {"kind": "anthropic", "obj": obj, "lines": reqs, "results": None}
        return self._json(200, obj)

    def _anthropic_batch_get(self, bid: str, results: bool, base: str) -> FakeResponse:
        if bid not in self.batches:
            return self._json(404, {"type": "error", "error": {"type": "not_found_error", "message": bid}})
        b = self.batches[bid]
        if not results:
            b["polls"] = b.get("polls", 0) + 1
        if self._ready(b) and b["obj"]["processing_status"] == "in_progress":
            rows, ok, bad = [], 0, 0
            for req in b["lines"]:
                fault = self._next_fault()
                if fault in ("500", "529"):
                    rows.append({"custom_id": req["custom_id"], "result": {"type": "errored", "error": {
                        "type": "error", "error": {"type": "api_error", "message": "server error"}}}})
                    bad += 1
                    continue
                resp = self._generation("/v1/messages", req.get("params") or {},
                                        fault if fault in CONTENT_FAULTS else None,
                                        batch=True)
                rows.append({"custom_id": req["custom_id"], "result": {"type": "succeeded",
                                                                       "message": json.loads(resp.body)}})
                ok += 1
            b["results"] = "".join(json.dumps(r) + "\n" for r in rows).encode()
            b["obj"].update(processing_status="ended", ended_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                            results_url=f"{base}/v1/messages/batches/{bid}/results",
                            request_counts={"processing": 0, "succeeded": ok, "errored": bad, "canceled": 0,
                                            "expired": 0})
        if results:
            if b["results"] is None:
                return self._json(400, {"type": "error", "error": {"type": "invalid_request_error",
                                                                   "message": "batch still in progress"}})
            return FakeResponse(200, b["results"], {"content-type": "application/binary"})
        return self._json(200, b["obj"])

