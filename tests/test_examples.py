"""Each example runs to the end in its fast mode and writes what it promises."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(name, *args):
    out = subprocess.run([sys.executable, os.path.join(ROOT, "examples", name), *args],
                         capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_autograd_basics():
    assert "gradcheck: True" in run("01_autograd_basics.py")


def test_custom_op_shows_a_caught_wrong_backward():
    out = run("02_custom_op.py")
    assert "Softplus: True" in out and "WrongSoftplus is caught" in out


def test_optimizer_paths_writes_its_figure_and_animation(tmp_path):
    from PIL import Image
    run("03_optimizer_paths.py", "--fast", "--out", str(tmp_path))
    assert os.path.getsize(tmp_path / "optimizer_paths.png") > 50_000
    with Image.open(tmp_path / "optimizer_paths.gif") as gif:
        assert gif.format == "GIF" and gif.n_frames == 12


@pytest.mark.parametrize("args", [["--fast"]])
def test_training_loop_learns(args):
    out = run("04_training_loop.py", *args)
    accuracy = float(out.split("val acc ")[1].split(",")[0])
    assert accuracy > 0.8           # one epoch on 3,000 images


def test_the_readmes_own_model_example_runs_as_written():
    import re
    readme = open(os.path.join(ROOT, "README.md")).read()
    section = readme.split("## Your own model", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    assert float(out.stdout.strip()) < 0.5        # the last epoch's training loss


def test_regression_example_fits_and_plots(tmp_path):
    out = run("06_regression.py", "--fast", "--out", str(tmp_path))
    assert "Adam" in out and os.path.getsize(tmp_path / "regression.png") > 20_000
    adam = float(out.split("Adam")[1].split(":")[1].split()[0])
    assert adam < 1.0                              # from about 2.2 at the start


def test_schedules_example_trains_under_each_schedule(tmp_path):
    out = run("07_schedules.py", "--fast", "--out", str(tmp_path))
    assert os.path.getsize(tmp_path / "schedules.png") > 20_000
    rows = [line for line in out.splitlines() if "val acc by epoch" in line]
    assert len(rows) == 4
    for row in rows:                # 3 epochs on 1,500 images: each one learns
        assert float(row.split()[-1]) > 0.6, row


FASHION = "/usr/share/datasets/fashion-mnist"


@pytest.mark.skipif(not os.path.isdir(FASHION) and not os.environ.get("CI"),
                    reason="Fashion-MNIST is not installed (apt-get install "
                           "dataset-fashion-mnist); .ci/run installs it")
def test_lenet_on_fashion_mnist_learns_in_its_fast_mode():
    out = run("05_lenet_fashion_mnist.py", "--fast")
    accuracy = float(out.split("test accuracy after 2 epochs on 10,000 images: ")[1])
    assert accuracy > 0.8


def test_lenet_without_its_data_set_says_so_in_one_line(tmp_path):
    """No Fashion-MNIST where it looks: one line naming the folder, exit status 2, no
    traceback (it was a traceback)."""
    out = subprocess.run([sys.executable, os.path.join(ROOT, "examples",
                                                      "05_lenet_fashion_mnist.py"),
                          "--fast", "--data-dir", str(tmp_path / "none")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.count("\n") == 1 and str(tmp_path / "none") in out.stderr


def test_char_transformer_learns_austen_and_writes_its_curve(tmp_path):
    """--fast: 400 steps of a small model; from ln(vocab) = 6.3 bits per character to
    well under 3.6 (a model of single letters is 4.4), and a sample printed each
    evaluation."""
    import json
    out = run("08_char_transformer.py", "--fast", "--out", str(tmp_path))
    assert out.count("It is a truth universally acknowledged") == 4
    final = float(out.split("nats, ")[1].split(" bits")[0])
    assert final < 3.6, out
    history = json.load(open(tmp_path / "char_transformer.json"))["history"]
    assert [e["step"] for e in history] == [100, 200, 300, 400]
    assert os.path.getsize(tmp_path / "char_transformer.png") > 20_000


def test_edge_of_stability_example_reaches_the_thresholds(tmp_path):
    """Full-batch gradient descent's sharpness hovers at 2/lr, Adam's preconditioned
    sharpness at 38/lr (Cohen et al. 2021, 2022), in the fast mode's 300 steps."""
    out = run("09_edge_of_stability.py", "--fast", "--out", str(tmp_path))
    ratios = {(line.split()[0], float(line.split()[2])): float(line.split("(ratio ")[1][:4])
              for line in out.splitlines() if "(ratio " in line}
    assert len(ratios) == 5, out
    for run_ in [("gd", 0.15), ("gd", 0.2), ("adam", 0.002)]:
        assert 0.85 <= ratios[run_] <= 1.15, (run_, out)
    assert ratios[("gd", 0.1)] < 0.85               # 2/lr = 20 not reached in 300 steps
    assert os.path.getsize(tmp_path / "edge_of_stability.png") > 50_000


def test_landscapes_example_writes_its_figures(tmp_path):
    import json
    out = run("10_landscapes.py", "--fast", "--out", str(tmp_path))
    result = json.load(open(tmp_path / "landscapes.json"))
    line = result["interpolation"]
    assert line["alphas"][0] == -0.5 and line["alphas"][-1] == 1.5
    i0, i1 = line["alphas"].index(0.0), line["alphas"].index(1.0)
    for name, i in zip(RULE_NAMES, (i0, i1)):             # the ends are the two solutions
        assert line["loss"][i] == result[name]["loss"], out
    assert len(result["plane"]["sgd"]) == len(result["plane"]["adam"])
    for name in ("landscape_interpolation.png", "landscape_2d.png"):
        assert os.path.getsize(tmp_path / name) > 30_000


RULE_NAMES = ("SGD with momentum, lr 0.03", "Adam, lr 0.003")
