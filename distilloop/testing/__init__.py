"""Test doubles that speak real wire protocols (a fake of the OpenAI and Anthropic HTTP APIs)."""
