"""``python -m distilloop.testing.fake_api [--port N]``: serve the fake OpenAI/Anthropic API on 127.0.0.1."""

from distilloop.testing.fake_api.http import main

main()
