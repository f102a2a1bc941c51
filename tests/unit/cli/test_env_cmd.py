import json

from llmtrain.cli.main import main


def test_env_reports_torch_threads_and_missing_features(capsys):
    assert main(["env", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    for key in ("python", "torch", "cuda_available", "torch_threads", "libraries", "missing"):
        assert key in info
    assert info["libraries"]["torch"] and info["libraries"]["tokenizers"]
    assert isinstance(info["gpus"], list)
    assert main(["env"]) == 0
    text = capsys.readouterr().out
    assert "torch" in text and "threads" in text


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "prepare" in capsys.readouterr().out
