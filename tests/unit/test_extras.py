import subprocess
import sys

import pytest

from distilloop._extras import require
from distilloop.errors import MissingExtraError


def test_missing_extra_names_the_install_command():
    with pytest.raises(MissingExtraError) as exc:
        require("definitely_not_installed_mod", "hf", purpose="the encoder student")
    msg = str(exc.value)
    assert "pip install -c constraints.txt 'distilloop[hf]'" in msg and "encoder student" in msg


def test_import_distilloop_needs_no_optional_dependency():
    # block every heavy/optional module, then import the package and its core parts
    code = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {'torch', 'transformers', 'sentence_transformers', 'openai', 'anthropic',
                                  'label_studio_sdk', 'llama_cpp', 'peft', 'matplotlib'}:
            raise ImportError('blocked ' + name)
sys.meta_path.insert(0, Block())
import distilloop, distilloop.cli, distilloop.loop.campaign, distilloop.annotators.local, distilloop.storage
from distilloop.annotators.local import LlamaCppTeacher
try:
    LlamaCppTeacher(name='x', model='qwen2.5-coder-0.5b')._load()
except Exception as e:
    print(type(e).__name__, e)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "MissingExtraError" in out.stdout and "distilloop[local]" in out.stdout
