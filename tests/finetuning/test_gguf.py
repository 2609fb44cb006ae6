"""llama.cpp's GGUF converter: its version comes from the pin, only its files are kept from the sdist and
cached, and a wrong or missing sdist is an error that names the file or the variable. The conversion
itself runs in tests/finetuning/test_export.py."""
from __future__ import annotations

import io
import tarfile

import pytest

from finetuning import gguf, llama_server


@pytest.mark.parametrize("line, version", [
    ("llama-cpp-python[server]==0.3.36", "0.3.36"),
    ("llama_cpp_python==1.2.3  # comment", "1.2.3"),
    ("LLAMA-CPP-PYTHON == 0.4.0; python_version >= '3.9'", "0.4.0"),
])
def test_version_comes_from_the_pin(tmp_path, line, version):
    req = tmp_path / "requirements-test.txt"
    req.write_text(f"pytest==9.2.0\n# llama-cpp-python==9.9.9 in a comment does not count\n{line}\n")
    assert gguf.llama_cpp_version(req) == version


def test_missing_pin_names_the_file(tmp_path):
    req = tmp_path / "requirements-test.txt"
    req.write_text("pytest==9.2.0\n")
    with pytest.raises(gguf.ExportError, match="requirements-test.txt"):
        gguf.llama_cpp_version(req)
    with pytest.raises(gguf.ExportError, match="cannot read"):
        gguf.llama_cpp_version(tmp_path / "absent.txt")


def test_the_repository_pin_is_the_installed_llama_cpp():
    llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (requirements-test.txt)")
    assert gguf.llama_cpp_version() == llama_cpp.__version__


def _fake_sdist(path, files: dict[str, str]):
    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_converter_is_extracted_once_with_only_its_files(tmp_path, monkeypatch):
    top = "llama_cpp_python-9.9.9/vendor/llama.cpp/"
    sdist = _fake_sdist(tmp_path / "llama_cpp_python-9.9.9.tar.gz", {
        top + "convert_hf_to_gguf.py": "print('hf')", top + "convert_lora_to_gguf.py": "print('lora')",
        top + "LICENSE": "MIT", top + "conversion/__init__.py": "", top + "conversion/llama.py": "",
        top + "gguf-py/gguf/__init__.py": "", top + "gguf-py/tests/test_x.py": "",
        top + "ggml/src/ggml.c": "int main;", top + "conversion/../../../../evil.py": "",
        "llama_cpp_python-9.9.9/llama_cpp/llama.py": "",
    })
    monkeypatch.setenv(gguf.CONVERTER_CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv(llama_server.SDIST_ENV, str(sdist))
    conv = gguf.ensure_converter("9.9.9")
    assert conv == tmp_path / "cache" / "9.9.9"
    kept = sorted(str(p.relative_to(conv)) for p in conv.rglob("*") if p.is_file())
    assert kept == [".ku_complete", "LICENSE", "conversion/__init__.py", "conversion/llama.py",
                    "convert_hf_to_gguf.py", "convert_lora_to_gguf.py", "gguf-py/gguf/__init__.py"]
    assert not (tmp_path / "evil.py").exists()
    sdist.unlink()  # cached: the sdist is not read again
    assert gguf.ensure_converter("9.9.9") == conv


def test_sdist_without_converter_is_an_error(tmp_path, monkeypatch):
    sdist = _fake_sdist(tmp_path / "x.tar.gz", {"llama_cpp_python-9.9.9/setup.py": ""})
    monkeypatch.setenv(gguf.CONVERTER_CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv(llama_server.SDIST_ENV, str(sdist))
    with pytest.raises(gguf.ExportError, match="x.tar.gz"):
        gguf.ensure_converter("9.9.9")
    assert not (tmp_path / "cache" / "9.9.9").exists()




def test_a_local_sdist_that_is_not_there_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv(gguf.CONVERTER_CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv(llama_server.SDIST_ENV, str(tmp_path / "absent.tar.gz"))
    with pytest.raises(gguf.ExportError, match=f"{llama_server.SDIST_ENV}.*absent.tar.gz"):
        gguf.ensure_converter("9.9.9")


def test_gguf_names():
    assert [gguf.gguf_name(k, "q8_0") for k in ("model", "base", "adapter")] == [
        "model-q8_0.gguf", "base-q8_0.gguf", "adapter-q8_0.gguf"]
