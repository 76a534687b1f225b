"""Progress off a terminal: a spinner or a bar showed nothing until it ended (an hour's embedding of a 200,000-row
pool under nohup: an empty log), so a plain line says how far it is every HEARTBEAT_S seconds."""

import io

from rich.console import Console

from distilloop.loop import progress as progress_module
from distilloop.loop.progress import Progress


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def labeled_100_items(monkeypatch, *, terminal):
    """A bar of 100 items at 1 s an item, on a console that is a terminal or not: the clock and the output."""
    clock = Clock()
    monkeypatch.setattr(progress_module.time, "monotonic", clock)
    out = io.StringIO()
    p = Progress(console=Console(file=out, force_terminal=terminal, width=200))
    with p.bar("round 4: teachers labeling", 100) as advance:
        for _ in range(100):
            clock.t += 1.0
            advance()
    return p, clock, out


def test_off_a_terminal_a_line_every_heartbeat_says_how_far(monkeypatch):
    p, clock, out = labeled_100_items(monkeypatch, terminal=False)  # a line at 30, 60 and 90 s
    with p.status("round 5: selecting 20 of 200,122 with entropy") as update:
        for done in range(0, 200_000, 20_000):
            clock.t += 10.0  # a line at 30, 60 and 90 s
            update(f"round 5: selecting 20 of 200,122 with entropy: embedding {done:,}/200,000 texts")
    lines = out.getvalue().splitlines()
    assert lines[:3] == ["round 4: teachers labeling: 30/100, 30 s, about 70 s left",
                         "round 4: teachers labeling: 60/100, 60 s, about 40 s left",
                         "round 4: teachers labeling: 90/100, 90 s, about 10 s left"]
    assert lines[3].startswith("round 4: teachers labeling ━") and "100/100" in lines[3]
    assert lines[4:] == ["round 5: selecting 20 of 200,122 with entropy: embedding 40,000/200,000 texts",
                         "round 5: selecting 20 of 200,122 with entropy: embedding 100,000/200,000 texts",
                         "round 5: selecting 20 of 200,122 with entropy: embedding 160,000/200,000 texts",
                         "round 5: selecting 20 of 200,122 with entropy: done"]


def test_on_a_terminal_the_bar_and_spinner_speak_for_themselves(monkeypatch):
    _, _, out = labeled_100_items(monkeypatch, terminal=True)
    assert "labeling: 30/100" not in out.getvalue()  # no heartbeat lines among the bar's redraws


def test_off_a_terminal_work_that_reports_no_steps_still_says_it_is_alive(monkeypatch):
    """A student training (step_by_step: minutes on a CPU, hours of a large one) or a teacher slow to answer gives
    its spinner or bar no update: the log said nothing until it ended. A watching thread says how long so far."""
    import time

    monkeypatch.setattr(progress_module, "HEARTBEAT_S", 0.3)
    out = io.StringIO()
    p = Progress(console=Console(file=out, force_terminal=False, width=200))
    with p.status("round 1: training step_by_step on 100 labels"):
        time.sleep(0.75)
    with p.bar("round 2: teachers labeling", 10) as advance:
        advance()
        time.sleep(0.75)
    lines = out.getvalue().splitlines()
    training = [x for x in lines if x.startswith("round 1: training step_by_step on 100 labels: ")]
    assert len(training) >= 3 and training[0] == "round 1: training step_by_step on 100 labels: 0 s so far"
    assert training[-1] == "round 1: training step_by_step on 100 labels: done"
    assert any(x.startswith("round 2: teachers labeling: 1/10, ") for x in lines)


def test_off_a_terminal_the_time_left_follows_the_recent_pace(monkeypatch):
    """The bench's 90 campaigns: the first ended after 240 s (the long ones start first), then one every few
    seconds; the pace since the start said "about 356 min left" at 1 of 90 and 33 min at 12 where 6 were left.
    The time left follows the pace of the last two minutes, and nothing is said after one item."""
    clock = Clock()
    monkeypatch.setattr(progress_module.time, "monotonic", clock)
    out = io.StringIO()
    p = Progress(console=Console(file=out, force_terminal=False, width=200))
    with p.bar("levers", 90) as advance:
        clock.t += 240.0
        advance()  # 1 of 90 at 240 s: a line then says no time left
        for _ in range(59):
            clock.t += 5.0
            advance()  # then one every 5 s: a line at 270 s (7 done), 300 s (13), ...
    lines = [x for x in out.getvalue().splitlines() if x.startswith("levers: ")]
    assert lines[0] == "levers: 1/90, 240 s", lines
    later = [x for x in lines if x.startswith("levers: 13/90")]
    assert later == ["levers: 13/90, 300 s, about 6 min left"], lines  # 77 left at 5 s each: 6.4 min
