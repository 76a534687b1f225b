"""The OpenAI side of the fake: chat completions (json_schema / json_object, logprobs, cached-token usage), the
Responses API, files and batches, dressed as the real API dresses them."""

from __future__ import annotations

import json
import math
import re
import time
import urllib.parse
from typing import Any

from distilloop.testing.fake_api.base import _TOKEN, CONTENT_FAULTS, FakeResponse, Generation, Routes


class OpenAIRoutes(Routes):
    def _logprob_tokens(self, gen: Generation, top_n: int) -> list[dict[str, Any]]:
        """Tokens of the answer with logprobs. The fake's belief: the chosen label at ``confidence``, the other
        labels sharing the rest; at each token of the label's value, the alternatives are the next tokens of the
        labels that begin as the answer has so far, each with its conditional probability (labels that begin
        alike, ``card arrival`` and ``card payment``, share a first token and part at a later one, as a real
        API's top_logprobs show them)."""
        out = []
        m = re.search(r'"label":\s*"', gen.text)
        label_at = m.end() if m else -1
        spelled = {lab: _TOKEN.findall(lab) for lab in gen.labels}
        chosen = spelled.get(gen.label, [])
        belief = {lab: self.confidence if lab == gen.label else (1 - self.confidence) / max(1, len(spelled) - 1)
                  for lab in spelled}
        pos, step = 0, -1
        for tok in _TOKEN.findall(gen.text):
            entry: dict[str, Any] = {"token": tok, "logprob": -0.01, "bytes": list(tok.encode()), "top_logprobs": []}
            step = 0 if pos == label_at else step + 1 if step >= 0 else -1
            if 0 <= step < len(chosen) and gen.labels:
                nexts: dict[str, float] = {}
                for lab, toks in spelled.items():
                    if toks[:step] == chosen[:step] and len(toks) > step:
                        nexts[toks[step]] = nexts.get(toks[step], 0.0) + belief[lab]
                total = sum(nexts.values())
                alts = sorted(nexts.items(), key=lambda kv: (kv[0] != tok, -kv[1]))
                entry["logprob"] = math.log(nexts.get(tok, total) / total)
                entry["top_logprobs"] = [{"token": t, "logprob": math.log(p / total), "bytes": list(t.encode())}
                                         for t, p in alts[:max(1, top_n)]]
            elif top_n:
                entry["top_logprobs"] = [{"token": tok, "logprob": -0.01, "bytes": list(tok.encode())}]
            out.append(entry)
            pos += len(tok)
        return out

    def _chat(self, body: dict[str, Any], gen: Generation) -> FakeResponse:
        system = "\n".join(self._flatten(m.get("content")) for m in body.get("messages", [])
                           if m.get("role") in ("system", "developer"))
        cached = gen.system_tokens if (system and self.prompt_cache and self._cache_hit("openai:" + system)) else 0
        choice: dict[str, Any] = {"index": 0, "finish_reason": "length" if gen.cut else "stop",
                                  "message": {"role": "assistant", "content": gen.text, "refusal": None},
                                  "logprobs": None}
        if body.get("logprobs"):
            choice["logprobs"] = {"content": self._logprob_tokens(gen, int(body.get("top_logprobs") or 0)),
                                  "refusal": None}
        return self._json(200, {
            "id": self._id("chatcmpl-"), "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "fake"), "choices": [choice],
            "usage": {"prompt_tokens": gen.tokens_in, "completion_tokens": gen.tokens_out,
                      "total_tokens": gen.tokens_in + gen.tokens_out,
                      "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
                      "completion_tokens_details": {"reasoning_tokens": 0}}})

    def _responses(self, body: dict[str, Any], gen: Generation) -> FakeResponse:
        system = body.get("instructions") or ""
        cached = gen.system_tokens if (system and self.prompt_cache and self._cache_hit("openai:" + system)) else 0
        content: dict[str, Any] = {"type": "output_text", "text": gen.text, "annotations": []}
        if "message.output_text.logprobs" in (body.get("include") or []):
            content["logprobs"] = self._logprob_tokens(gen, int(body.get("top_logprobs") or 0))
        return self._json(200, {
            "id": self._id("resp_"), "object": "response", "created_at": time.time(),
            "status": "incomplete" if gen.cut else "completed",
            "incomplete_details": {"reason": "max_output_tokens"} if gen.cut else None,
            "model": body.get("model", "fake"), "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
            "output": [{"type": "message", "id": self._id("msg_"), "role": "assistant", "status": "completed",
                        "content": [content]}],
            "usage": {"input_tokens": gen.tokens_in, "output_tokens": gen.tokens_out,
                      "total_tokens": gen.tokens_in + gen.tokens_out,
                      "input_tokens_details": {"cached_tokens": cached},
                      "output_tokens_details": {"reasoning_tokens": 0}}})


    def _chat_list(self, query: str) -> FakeResponse:
        """``GET /v1/chat/completions``: the stored completions whose metadata has every ``metadata[k]=v`` asked."""
        wanted = {k[len("metadata["):-1]: v for k, v in urllib.parse.parse_qsl(query)
                  if k.startswith("metadata[") and k.endswith("]")}
        with self._lock:
            found = [c for c in self.stored.values() if all(c["metadata"].get(k) == v for k, v in wanted.items())]
        return self._json(200, {"object": "list", "data": found, "first_id": found[0]["id"] if found else None,
                                "last_id": found[-1]["id"] if found else None, "has_more": False})

    def _file_upload(self, headers: dict[str, str], body: bytes) -> FakeResponse:
        m = re.search(r"boundary=\"?([^\";]+)", headers.get("content-type", ""))
        if not m:
            return self._json(400, {"error": {"message": "expected multipart/form-data"}})
        data, purpose, filename = b"", "", "file"
        for part in body.split(b"--" + m.group(1).encode()):
            head, _, content = part.partition(b"\r\n\r\n")
            content = content.removesuffix(b"\r\n")
            if b'name="file"' in head:
                data = content
                fm = re.search(rb'filename="([^"]*)"', head)
                filename = fm.group(1).decode() if fm else filename
            elif b'name="purpose"' in head:
                purpose = content.decode()
        fid = self._id("file-")
        with self._lock:
            self.files[fid] = data
        return self._json(200, {"id": fid, "object": "file", "bytes": len(data), "created_at": int(time.time()),
                                "filename": filename, "purpose": purpose, "status": "processed"})

    def _openai_batch_create(self, body: dict[str, Any]) -> FakeResponse:
        fid = body.get("input_file_id", "")
        if fid not in self.files:
            return self._json(400, {"error": {"message": f"no file {fid}"}})
        bid = self._id("batch_")
        lines = [json.loads(x) for x in self.files[fid].decode().splitlines() if x.strip()]
        batch = {"id": bid, "object": "batch", "endpoint": body.get("endpoint"), "input_file_id": fid,
                 "completion_window": body.get("completion_window", "24h"), "status": "in_progress",
                 "metadata": body.get("metadata") or None,
                 "created_at": int(time.time()), "output_file_id": None, "error_file_id": None,
                 "request_counts": {"total": len(lines), "completed": 0, "failed": 0}}
        with self._lock:
            self.batches[bid] = {"kind": "openai", "obj": batch, "lines": lines}
        return self._json(200, batch)

    def _openai_batch_get(self, bid: str) -> FakeResponse:
        if bid not in self.batches:
            return self._json(404, {"error": {"message": f"no batch {bid}"}})
        b = self.batches[bid]
        b["polls"] = b.get("polls", 0) + 1
        if self._ready(b) and b["obj"]["status"] == "in_progress":
            out, err = [], []
            for line in b["lines"]:
                fault = self._next_fault()
                resp = self._generation(line.get("url", "/v1/chat/completions"), line.get("body") or {},
                                        fault if fault in CONTENT_FAULTS else None,
                                        batch=True)
                if fault in ("500", "529"):
                    err.append({"id": self._id("batch_req_"), "custom_id": line["custom_id"],
                                "response": {"status_code": 500, "request_id": "r",
                                             "body": {"error": {"message": "server error"}}}, "error": None})
                else:
                    out.append({"id": self._id("batch_req_"), "custom_id": line["custom_id"],
                                "response": {"status_code": resp.status, "request_id": "r",
                                             "body": json.loads(resp.body)}, "error": None})
            ofid, efid = self._id("file-"), self._id("file-")
            with self._lock:
                self.files[ofid] = "".join(json.dumps(x) + "\n" for x in out).encode()
                self.files[efid] = "".join(json.dumps(x) + "\n" for x in err).encode()
                b["obj"].update(status="completed", output_file_id=ofid, error_file_id=efid if err else None,
                                completed_at=int(time.time()),
                                request_counts={"total": len(b["lines"]), "completed": len(out), "failed": len(err)})
        return self._json(200, b["obj"])

