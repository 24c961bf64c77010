"""`make bench`'s quick variant runs to the end and prints every section it promises."""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_bench_quick_prints_every_section_with_figures():
    with open(os.path.join(ROOT, "Makefile")) as f:       # what `make bench-quick` runs
        recipe = f.read().split("\nbench-quick:")[1].splitlines()[1].strip()
    assert recipe == "$(BIN)/python benchmarks/bench.py --quick"
    out = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "bench.py"),
                          "--quick"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    for heading in ("training workloads", "JIT compile", "article model, batch 64",
                    "character transformer, batch 32 x context 128",
                    "kernels at the article's shapes", "fused block beyond",
                    "LeNet-5's blocks", "optimizer updates", "SOAP on the article model's"):
        assert heading in text, heading
    lenet = re.search(r"LeNet-5 epoch, batch 64, Adam: +([\d.]+) s", text)
    assert lenet and float(lenet.group(1)) > 0
    step = re.search(r"char transformer step, AdamW: +([\d.]+) ms \(.* tokens/s\).*peak RSS "
                     r"(\d+) MiB", text)
    assert step and float(step.group(1)) > 0 and int(step.group(2)) > 0
    assert "SelfAttentionFn backward" in text and "GELUFn forward" in text
    blocks = re.findall(r"with the fused tail ([\d.]+), with the three layers ([\d.]+)", text)
    assert len(blocks) == 2 and all(float(a) > 0 and float(b) > 0 for a, b in blocks)



def test_adam_epochs_workload_reports_each_epochs_time():
    """The workload that shows Adam's epochs flat (docs/performance.md) runs and reports
    each epoch and its state's subnormal count (tests/test_underflow.py shows that count
    is 0 with the flush and not without it)."""
    import json
    out = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "bench.py"),
                          "--workload", "adam-epochs-keep", "--repeat", "2", "--limit",
                          "640"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(result["epoch_s"]) == 2 and all(t > 0 for t in result["epoch_s"])
    assert isinstance(result["subnormal_state"], int)
