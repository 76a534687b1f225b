"""The Teacher contract: every teacher implementation's tests inherit this mixin and provide ``teacher``
(a fixture returning a ready teacher) and ``items`` (labeling items it can answer)."""

import asyncio

from distilloop.core.types import TeacherAnswer


class TeacherContract:
    def test_render_gives_a_prompt_with_the_label_set(self, teacher, items):
        prompt = teacher.render(items[0])
        assert prompt.labels == items[0].labels and prompt.messages and prompt.style == teacher.style.name

    def test_request_hash_is_stable_and_distinguishes_items(self, teacher, items):
        a, b = teacher.render(items[0]), teacher.render(items[1])
        assert teacher.request_hash(a) == teacher.request_hash(teacher.render(items[0]))
        assert teacher.request_hash(a) != teacher.request_hash(b)

    def test_answer_is_a_label_from_the_set_and_within_the_estimate(self, teacher, items):
        for item in items:
            prompt = teacher.render(item)
            estimate = teacher.estimate(prompt, item.example_id)
            ans = asyncio.run(teacher.answer(prompt, item))
            assert isinstance(ans, TeacherAnswer)
            if ans.valid:
                assert ans.label in item.labels
            else:
                assert ans.label is None and ans.error
            assert 0 <= ans.usage.tokens_in <= estimate.tokens_in
            assert 0 <= ans.usage.tokens_out <= estimate.tokens_out
            assert teacher.cost(ans.usage) <= estimate.usd + 1e-12
