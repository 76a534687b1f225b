"""Human review in Label Studio (label-studio-sdk 2.x), the :class:`~distilloop.annotators.review.Reviewer`
for real people.

The project (one per campaign, or reused by id or title) shows each routed item as a task: the input, every
teacher's label, confidence and rationale (read-only ``<HyperText>``, HTML-escaped), the answer control pre-filled
with the ensemble's vote, and a ``<TextArea>`` for a corrected rationale (:mod:`distilloop.annotators.ls_tasks`); its
instructions are the campaign's guideline. Submitting is idempotent.

Finished annotations come back by polling (``collect``), and, where ``webhook_port`` is set, also through a
webhook listener on 127.0.0.1 that checks a shared secret (a header Label Studio sends with every call); the
reviewer's name, the time spent (``lead_time``), the label and the corrected rationale are recorded. An
annotation changed (or added) after its item was taken comes back from ``revised``, one deleted from
``retracted``; an item sent again after its answers were taken gets a new task.
The API key is read from the environment variable named by ``api_key_env`` and never written anywhere.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any
from xml.etree import ElementTree

from distilloop._extras import require
from distilloop.annotators.ls_tasks import (
    GUIDELINE_HEAD,
    annotation_dict,
    annotation_stamp,
    instructions,
    labeling_config,
    parse_annotation,
    task_payload,
    unreadable,
)
from distilloop.annotators.review import Reviewer
from distilloop.annotators.webhook import SECRET_HEADER, _WebhookListener
from distilloop.core.answers import AnswerSpace, LabelSet
from distilloop.core.types import ReviewDecision, ReviewItem
from distilloop.errors import ConfigError, ReviewError

__all__ = ["SECRET_HEADER", "LabelStudioReviewer", "_WebhookListener", "labeling_config", "parse_annotation",
           "task_payload"]

log = logging.getLogger(__name__)


class LabelStudioReviewer(Reviewer):
    """Routes items to a Label Studio project and brings the reviewers' answers back.

    ``url``: the server; ``api_key_env``: the environment variable holding the API key (never stored);
    ``project_id`` or ``project_title``: the project to reuse (created with ``project_title`` if absent; by default
    ``distilloop <campaign name> <campaign id>``, one project per campaign). Tasks carry the campaign's id, so
    a project shared by several campaigns never mixes their tasks or their reviewers' answers;
    ``poll``: fetch annotations of pending tasks on every collect; ``webhook_port`` (0 = any free port) with
    ``webhook_secret_env``: also listen for Label Studio's webhook on ``webhook_host`` (loopback only), where
    ``webhook_url`` is the address Label Studio calls (default ``http://<webhook_host>:<port>/``);
    ``timeout_s`` and ``max_retries`` apply to every API call.
    """

    name = "label_studio"
    uses_external_ids = True

    def __init__(self, url: str = "http://127.0.0.1:8080", api_key_env: str = "LABEL_STUDIO_API_KEY",
                 project_title: str | None = None, project_id: int | None = None, poll: bool = True,
                 webhook_port: int | None = None, webhook_secret_env: str = "DISTILLOOP_WEBHOOK_SECRET",
                 webhook_host: str = "127.0.0.1", webhook_url: str | None = None, timeout_s: float = 30.0,
                 max_retries: int = 2) -> None:
        if project_title is not None and (not isinstance(project_title, str) or not 3 <= len(project_title) <= 50):
            raise ConfigError(f"review.project_title: Label Studio takes 3 to 50 characters, got {project_title!r}")
        self.url = url.rstrip("/")
        self.api_key_env = api_key_env
        self.project_title = project_title
        self.project_id = project_id
        self.poll = poll
        self.webhook_port = webhook_port
        self.webhook_secret_env = webhook_secret_env
        self.webhook_host = webhook_host
        self.webhook_url = webhook_url
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self._client: Any = None
        self._store: Any = None
        self._inbox: dict[int, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._listener: _WebhookListener | None = None
        self._users: dict[int, str] | None = None
        self.campaign: str | None = None  # the campaign's id, stamped on every task it imports
        self._own_project = False  # the project was created or remembered by this campaign
        self._lost: list[str] = []
        self._skipped: list[str] = []
        self._unread: list[tuple[str, str]] = []  # (example id, why) of answers with no label to read
        self._retracted: list[tuple[str, str]] = []
        self._unfinished: set[int] = set()  # tasks short of the project's annotations per task (its overlap)
        self._listed: dict[int, list[dict[str, Any]]] = {}  # task id -> its annotations, as last listed
        self._fresh = False  # the listing is this pull's (collect's): revised reads it instead of listing again

    def __repr__(self) -> str:  # the key lives only in the environment; never shown
        return (f"LabelStudioReviewer(url={self.url!r}, api_key_env={self.api_key_env!r}, api_key=<redacted>, "
                f"project_id={self.project_id!r})")

    # -- plumbing ------------------------------------------------------------------------------------
    def attach(self, store: Any) -> None:
        self._store = store
        if store is None:
            return
        self.campaign = store.get_meta("campaign_id")
        remembered_title = store.get_meta("label_studio_project_title")
        if self.project_id is None and (self.project_title is None or self.project_title == remembered_title):
            # the campaign's project from an earlier run, unless the campaign file now names another one
            self.project_id = store.get_meta("label_studio_project_id")
            self._own_project = self.project_id is not None
        if self.project_title is None:
            self.project_title = f"distilloop {store.get_meta('name') or 'campaign'}"[:42] + \
                f" {str(self.campaign or '')[:6]}".rstrip()

    def client(self) -> Any:
        if self._client is None:
            sdk = require("label_studio_sdk", "review", purpose="Label Studio review")
            key = os.environ.get(self.api_key_env)
            if not key:
                raise ReviewError(f"no Label Studio API key: set the environment variable {self.api_key_env} "
                                  "(Account & Settings > Access Token in Label Studio), or name another one with "
                                  "[review] api_key_env")
            self._client = sdk.LabelStudio(base_url=self.url, api_key=key, timeout=self.timeout_s,
                                           max_retries=self.max_retries)
        return self._client

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, missing_ok: bool = False, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)``, its failures said as a :class:`ReviewError`; ``missing_ok``: None for a 404."""
        from label_studio_sdk.core.api_error import ApiError

        try:
            return fn(*args, **kwargs)
        except ApiError as exc:
            if exc.status_code == 404 and missing_ok:
                return None
            if exc.status_code in (401, 403):
                raise ReviewError(f"Label Studio at {self.url} refused the API key from ${self.api_key_env} while "
                                  f"trying to {what} (HTTP {exc.status_code}); set a valid token") from None
            raise ReviewError(f"Label Studio at {self.url} failed to {what}: HTTP {exc.status_code} "
                              f"{str(exc.body)[:300]}") from None
        except Exception as exc:  # unreachable: an OSError, or an httpx transport error (not an OSError)
            if isinstance(exc, OSError) or type(exc).__module__.startswith(("httpx", "httpcore")):
                raise ReviewError(f"Label Studio at {self.url} is unreachable ({type(exc).__name__}: {exc}) while "
                                  f"trying to {what}; start it (`label-studio start`) or fix [review] url. "
                                  "Pending reviews stay queued and are picked up later.") from None
            raise

    def ensure_project(self, space: AnswerSpace | Sequence[str], guideline: str = "") -> int:
        """The project's id: the configured or remembered one, else one with this title, else a new one; its
        instructions are the campaign's ``guideline`` (never replacing instructions someone else wrote)."""
        c = self.client()
        if self.project_id is not None:
            project = self._call("open the project", c.projects.get, id=int(self.project_id), missing_ok=True)
            if project is not None:
                self._refresh(project, space, guideline)
                return int(self.project_id)
            if not self._own_project:
                raise ReviewError(f"Label Studio at {self.url} has no project {self.project_id} ([review] project_id): "
                                  "fix the id, or remove the key for a project of the campaign's own")
            # the campaign's project was deleted there (or the server's data reset): a new one, found or made below
            # by its title, takes the items queued again (pull_reviews re-queues those whose task is gone)
            self.project_id = None
        if self.project_title is None:
            self.project_title = "distilloop review"
        found = [p for p in self._call("list projects", c.projects.list, title=self.project_title)
                 if getattr(p, "title", None) == self.project_title]
        if found:
            self.project_id = int(found[0].id)
            self._refresh(found[0], space, guideline)
        else:
            self._own_project = True
            p = self._call("create the project", c.projects.create, title=self.project_title,
                           description="Items the distilloop teacher ensemble was unsure of. Pick the label; "
                                       "optionally correct the rationale.",
                           label_config=labeling_config(space), show_instruction=bool(guideline),
                           expert_instruction=instructions(guideline, space) if guideline else "")
            self.project_id = int(p.id)
        if self._store is not None:
            self._store.set_meta("label_studio_project_id", self.project_id)
            self._store.set_meta("label_studio_project_title", self.project_title)
        self._start_webhook()
        return int(self.project_id)

    def _refresh(self, project: Any, space: AnswerSpace | Sequence[str], guideline: str) -> None:
        """The project's labels grown (:meth:`_grow_labels`), and its instructions the current guideline where they
        are empty or this campaign's (an edited task: a new guideline version)."""
        self._grow_labels(project, space)
        now = str(getattr(project, "expert_instruction", None) or "")
        text = instructions(guideline, space) if guideline else now
        if text != now and (not now or now.startswith(GUIDELINE_HEAD)):
            self._call("update the project's instructions", self.client().projects.update, id=int(project.id),
                       expert_instruction=text, show_instruction=True)

    def _grow_labels(self, project: Any, space: AnswerSpace | Sequence[str]) -> None:
        """A campaign whose guideline added a label: the project's choices gain it (Label Studio keeps the
        annotations made before; it refuses only a config that drops a label they use)."""
        if not isinstance(space, AnswerSpace):
            space = LabelSet(space)
        if space.review_control != "choices":
            return
        try:  # the choices the project offers, however its config spells them
            have = {c.get("value") for c in ElementTree.fromstring(str(project.label_config)).iter("Choice")}
        except (ElementTree.ParseError, AttributeError, TypeError):
            return  # a config this cannot read is left as its owner wrote it
        if set(space.labels) <= have:
            return
        self._call("add the campaign's new labels to the project", self.client().projects.update,
                   id=int(project.id), label_config=labeling_config(space))

    def _start_webhook(self) -> None:
        if self.webhook_port is None or self._listener is not None:
            return
        secret = os.environ.get(self.webhook_secret_env)
        if not secret:
            raise ReviewError(f"review.webhook_port is set but the shared secret is missing: set the environment "
                              f"variable {self.webhook_secret_env}")
        self._listener = _WebhookListener(self.webhook_host, int(self.webhook_port), secret, self._receive)
        url = self.webhook_url or f"http://{self.webhook_host}:{self._listener.port}/"
        c = self.client()
        hooks = self._call("list webhooks", c.webhooks.list, project=self.project_id)
        if not any(getattr(h, "url", None) == url for h in hooks):
            self._call("register the webhook", c.webhooks.create, url=url, project=self.project_id,
                       headers={SECRET_HEADER: secret}, send_payload=True,
                       actions=["ANNOTATION_CREATED", "ANNOTATION_UPDATED"])

    def _receive(self, task_id: int, annotation: dict[str, Any]) -> None:
        with self._lock:
            box = self._inbox.setdefault(task_id, [])
            box[:] = [a for a in box if a.get("id") != annotation.get("id")] + [annotation]

    def _imported(self, project: int) -> dict[str, int]:
        """example id -> task id of every task already in the project."""
        c = self.client()
        out: dict[str, int] = {}
        unfinished: set[int] = set()
        listed: dict[int, list[dict[str, Any]]] = {}
        page, size = 1, 500
        from label_studio_sdk.core.api_error import ApiError

        while True:
            try:
                pager = c.tasks.list(project=project, page=page, page_size=size, fields="all")
                tasks = list(pager.items or []) if hasattr(pager, "items") else list(pager)
            except ApiError as exc:
                if exc.status_code == 404:  # paging past the end
                    break
                raise
            for t in tasks:
                data = t.data or {}
                ex, owner = data.get("example_id"), data.get("distilloop_campaign")
                if ex is not None and self._mine(owner):
                    out[str(ex)] = max(int(t.id), out.get(str(ex), 0))  # the newest: an item sent again
                    listed[int(t.id)] = [annotation_dict(a) for a in getattr(t, "annotations", None) or []]
                    if getattr(t, "is_labeled", None) is False:
                        unfinished.add(int(t.id))
            if len(tasks) < size:
                break
            page += 1
        self._unfinished, self._listed = unfinished, listed
        return out

    def _mine(self, owner: str | None) -> bool:
        """A task of this campaign: stamped with its id, or, imported before tasks were, in its own project."""
        if self.campaign is None:  # a reviewer used on its own, outside a campaign: the whole project
            return True
        return owner == self.campaign if owner else self._own_project

    # -- the Reviewer contract -----------------------------------------------------------------------
    def submit(self, items: Sequence[ReviewItem]) -> dict[str, str | None]:
        if not items:
            return {}
        project = self.ensure_project(items[0].space, items[0].guideline)
        existing = self._call("list the project's tasks", self._imported, project)
        # an item sent again (re-asked under a new guideline) whose task's answers the campaign took already gets
        # a task of its own: the old one is done, and its answers would be taken again as new reviews
        new = [it for it in items if it.example_id not in existing or self._taken(it.example_id, existing)]
        if new:
            self._call("import tasks", self.client().projects.import_tasks, id=project,
                       request=[task_payload(it, self.campaign) for it in new], return_task_ids=True)
            existing = self._call("list the project's tasks", self._imported, project)
        missing = [it.example_id for it in items if it.example_id not in existing]
        if missing:
            raise ReviewError(f"Label Studio did not create tasks for {missing[:5]} (project {project}); check the "
                              "server's log")
        return {it.example_id: str(existing[it.example_id]) for it in items}

    def _taken(self, example_id: str, existing: dict[str, int]) -> bool:
        """Whether the campaign took answers from the item's task already (recorded as its reviews)."""
        task = str(existing[example_id])
        return self._store is not None and any(r["external_id"] == task and r["source"] != "auto"
                                               for r in self._store.reviews(example_id))

    def _user(self, user_id: int | None, username: str | None) -> str:
        if user_id is not None:
            if self._users is None:
                try:
                    self._users = {int(u.id): (u.email or u.username or str(u.id))
                                   for u in self._call("list users", self.client().users.list)}
                except ReviewError:
                    self._users = {}
            if int(user_id) in self._users:
                return self._users[int(user_id)]
        if username:  # Label Studio writes "<email>, <id>"
            return username.strip().rsplit(",", 1)[0].strip() or username.strip()
        return "label-studio" if user_id is None else f"label-studio-user-{user_id}"

    def collect(self, pending: Sequence[dict[str, Any]]) -> list[ReviewDecision]:
        rows = [r for r in pending if r.get("external_id")]
        self._lost, self._skipped, self._unread, self._fresh = [], [], [], False
        if not rows:
            return []
        # this campaign's tasks in its project (example id -> task id): a row whose task is not among them was
        # deleted there, or its id names another task now (a server whose data was reset numbers tasks anew)
        mine = (self._call("list the project's tasks", self._imported, int(self.project_id))
                if self.poll and self.project_id is not None else None)
        self._fresh = mine is not None
        out: list[ReviewDecision] = []
        for row in rows:
            task_id = int(row["external_id"])
            if mine is not None and mine.get(str(row["example_id"])) != task_id:
                self._lost.append(row["example_id"])
                continue
            with self._lock:
                latest = self._inbox.get(task_id, [])[-1:]  # a webhook call says the task's state when it was sent
                waiting = (task_id in self._unfinished if mine is not None
                           else any(a.get("task_is_labeled") is False for a in latest))
                if waiting:  # a task short of its project's annotators per task (e.g. 1 of 2) waits for them
                    continue
                anns = list(self._inbox.pop(task_id, []))
            if mine is not None:  # the listing has every annotation, skips too (the API's list has not)
                anns = list(self._listed.get(task_id, []))
            elif not anns and self.poll:
                found = self._call("fetch annotations", self.client().annotations.list, id=task_id, missing_ok=True)
                if found is None:  # the task was deleted in Label Studio: the item is to be sent again
                    self._lost.append(row["example_id"])
                    continue
                anns = [annotation_dict(a) for a in found]
            out.extend(d for ann in anns if (d := self._decision(row["example_id"], task_id, ann)) is not None)
            if anns and all(a.get("was_cancelled") for a in anns):  # skipped, and the project counts it done
                self._skipped.append(row["example_id"])  # (its skip queue set to "ignore skipped")
            elif why := unreadable(anns):
                self._unread.append((row["example_id"], why))
        return out

    def _decision(self, example_id: str, task_id: int, ann: dict[str, Any]) -> ReviewDecision | None:
        if ann.get("was_cancelled"):
            return None
        label, rationale = parse_annotation(ann)
        if label is None:
            return None
        reviewer = self._user(ann.get("completed_by"), ann.get("created_username"))
        return ReviewDecision(example_id, label, rationale, reviewer, "human", seconds_spent=ann.get("lead_time"),
                              external_id=str(task_id), ref=None if ann.get("id") is None else str(ann["id"]),
                              version=annotation_stamp(ann.get("updated_at")))

    def revised(self, taken: Sequence[dict[str, Any]]) -> list[ReviewDecision]:
        # task id -> {annotation id: its version when taken}; reviews taken before annotation ids were kept (a
        # store from before 0009) are not followed
        known: dict[int, dict[str, str | None]] = {}
        example: dict[int, str] = {}
        for r in taken:
            if r.get("external_id") and r.get("ref"):
                known.setdefault(int(r["external_id"]), {})[str(r["ref"])] = r.get("version")
                example[int(r["external_id"])] = r["example_id"]
        self._retracted = []
        if not known:
            return []
        with self._lock:  # the webhook's calls about tasks already taken (the listing has them too, when polling)
            found = {task_id: self._inbox.pop(task_id) for task_id in known if task_id in self._inbox}
        if self.poll and self.project_id is not None:  # the task listing carries every annotation: one call
            if not self._fresh:
                self._call("list the project's tasks", self._imported, int(self.project_id))
            self._fresh = False
            found = {task_id: self._listed[task_id] for task_id in known if task_id in self._listed}  # (not gone)
            self._retracted = [(example[task_id], ref) for task_id, anns in found.items()
                               for ref in sorted(set(known[task_id]) - {str(a.get("id")) for a in anns})]
        return [d for task_id, anns in found.items() for ann in anns  # those changed since they were taken
                if known[task_id].get(str(ann.get("id")), "new") != annotation_stamp(ann.get("updated_at"))
                and (d := self._decision(example[task_id], task_id, ann)) is not None]

    def lost(self) -> list[str]:
        return list(self._lost)

    def skipped(self) -> list[str]:
        return list(self._skipped)

    def retracted(self) -> list[tuple[str, str]]:
        return list(self._retracted)

    def unread(self) -> list[tuple[str, str]]:
        return list(self._unread)

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None

