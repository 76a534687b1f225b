"""A running campaign whose `[student]` is changed (another kind, another model) trains the new student from
scratch and judges it against the active one, instead of failing on the old weights ("warm_start must be a
fitted EncoderClassifier, got EmbeddingLinear") or silently continuing them."""

from distilloop.students.encoder import EncoderClassifier
from distilloop.students.tfidf import TfidfLogReg
from tests.conftest import replay_config
from tests.unit.loop.living_helpers import cli, edit

FAST = 'epochs = 1\nmin_steps = 0\nbatch_size = 8\nmax_length = 24\ndevice = "cpu"'


def test_continues_only_the_same_kind_and_model(tiny_bert_dir, tmp_path):
    tfidf = TfidfLogReg()
    encoder = EncoderClassifier(model=str(tiny_bert_dir))
    assert encoder.continues(tfidf) is None and encoder.continues(None) is None
    assert encoder.continues(EncoderClassifier(model=str(tiny_bert_dir), epochs=7)) is not None  # epochs: no weights
    assert encoder.continues(EncoderClassifier(model=str(tmp_path))) is None  # another encoder: other weights
    assert tfidf.continues(TfidfLogReg()) is None  # no warm start at all


def test_a_campaign_switched_to_another_student_trains_it_from_scratch(tiny_bert_dir, tmp_path):
    cfg = replay_config(tmp_path, rounds="max_rounds = 1\ninitial_size = 20\nbatch_size = 20",
                        extra='[student]\nkind = "tfidf_logreg"\n')
    first = cli("run", cfg)
    assert first.returncode == 0, first.stderr
    edit(cfg, "max_rounds = 1", "max_rounds = 3")
    edit(cfg, 'kind = "tfidf_logreg"', f'kind = "encoder"\nmodel = "{tiny_bert_dir}"\n{FAST}')
    switched = cli("run", cfg)
    assert switched.returncode == 0, switched.stderr
    out = switched.stdout + switched.stderr
    assert "round 2: training encoder on 40 labels (from scratch: the active student is tfidf_logreg)" in out
    round2 = next(ln for ln in cli("students", cfg).stdout.splitlines() if "round   2" in ln)
    assert "encoder-" in round2
    # round 3 continues round 2's encoder where it was promoted, else it again starts from scratch
    again = "" if round2.endswith(" promoted") and "not promoted" not in round2 else \
        " (from scratch: the active student is tfidf_logreg)"
    assert f"round 3: training encoder on 60 labels{again}: done" in out
