# Every target sets itself up: a fresh clone needs only python3 with pip and venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEV    := $(VENV)/.installed-dev

.PHONY: install test bench bench-quick bench-torch reference-fixtures mnist mnist-quick study study-quick suite suite-soap suite-quick problems examples clean

# The package and what it needs to run; the tests add pytest and Ray (the study's
# optional backend, which make mnist and make study do not need). The kernels compile
# once here, into Numba's cache, so that no run's first minute pays for it.
$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e .
	@echo "compiling the kernels into Numba's cache (once, about 20 s)..."
	$(BIN)/python -c "from tinygrad_opt.train.experiment import warm_up; warm_up()"
	touch $(STAMP)

$(DEV): $(STAMP)
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(DEV)

install: $(STAMP)

test: $(DEV)
	$(BIN)/python -m pytest -q

mnist: $(STAMP)
	$(BIN)/tinygrad-opt mnist --out results/mnist --resume

mnist-quick: $(STAMP)
	$(BIN)/tinygrad-opt mnist --epochs 1 --limit 3000 --out results/mnist-quick --resume

# The article's protocol over 3 seeds: its batch-64 methods and full-batch GD, 10 epochs
# on the article's 60,000 training images (docs/protocol.md says what it costs).
study: $(STAMP)
	$(BIN)/tinygrad-opt study --protocol article --seeds 3 --epochs 10 --out results/study

study-quick: $(STAMP)
	$(BIN)/tinygrad-opt study --protocol article --optimizers gd,minibatch,adam --seeds 2 --epochs 3 --limit 5000 --out results/study-quick

# The suite of problems (docs/suite.md): the default rules at their defaults (the
# one-shot protocol), 3 seeds each, all seven problems; about 81 minutes here.
suite: $(STAMP)
	$(BIN)/tinygrad-opt study --problems all --protocol oneshot --seeds 3 --out results/suite

# SOAP beside the fifteen, on the six problems it can afford on one-thread workers (not
# mnist_cnn: 1.5 to 2 hours a seed; docs/suite.md); 90 minutes here.
SIX := quadratic_deep,mnist_logreg,mnist_mlp,fmnist_2c2d,mnist_autoencoder,austen_char_transformer
suite-soap: $(STAMP)
	$(BIN)/tinygrad-opt study --problems $(SIX) --protocol oneshot --seeds 3 --optimizers minibatch,momentum,adagrad,rmsprop,adadelta,adam,nadam,lion,rprop,adamax,lamb,adafactor,sf_sgd,sf_adamw,prodigy,soap --out results/suite-soap

suite-quick: $(STAMP)
	$(BIN)/tinygrad-opt study --problems all --quick --optimizers minibatch,adam --seeds 2 --out results/suite-quick

problems: $(STAMP)
	$(BIN)/tinygrad-opt problems

examples: $(STAMP)
	$(BIN)/python examples/01_autograd_basics.py
	$(BIN)/python examples/02_custom_op.py
	$(BIN)/python examples/03_optimizer_paths.py --out examples/out
	$(BIN)/python examples/04_training_loop.py --fast
	$(BIN)/python examples/05_lenet_fashion_mnist.py --fast
	$(BIN)/python examples/06_regression.py --out examples/out
	$(BIN)/python examples/07_schedules.py --out examples/out
	$(BIN)/python examples/08_char_transformer.py --fast --out examples/out
	$(BIN)/python examples/09_edge_of_stability.py --fast --out examples/out
	$(BIN)/python examples/10_landscapes.py --fast --out examples/out

bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py

bench-quick: $(STAMP)
	$(BIN)/python benchmarks/bench.py --quick

# The PyTorch yardstick, in a virtual environment of its own (the package never imports
# torch). A CPU build of torch: an unpinned `torch` from PyPI pulls a multi-GB GPU build.
TORCH_VENV := .venv-torch
$(TORCH_VENV)/.installed:
	$(PYTHON) -m venv $(TORCH_VENV)
	$(TORCH_VENV)/bin/python -m pip install -q torch==2.13.0 numpy
	touch $@

bench-torch: $(TORCH_VENV)/.installed
	$(TORCH_VENV)/bin/python benchmarks/torch_article_cnn.py --opt adam --epochs 3 --threads 2
	$(TORCH_VENV)/bin/python benchmarks/torch_article_cnn.py --model lenet --epochs 3 --threads 2
	$(TORCH_VENV)/bin/python benchmarks/torch_char_transformer.py --steps 30 --threads 2

# The tests' PyTorch and Keras trajectories and schedules (tests/fixtures/reference/),
# made by those libraries in the same separate environment, Keras on its torch backend.
reference-fixtures: $(TORCH_VENV)/.installed
	$(TORCH_VENV)/bin/python -m pip install -q keras==3.15.1 schedulefree==1.4.1 prodigyopt==1.1.2
	$(TORCH_VENV)/bin/python tests/fixtures/reference/make_torch.py
	$(TORCH_VENV)/bin/python tests/fixtures/reference/make_hessians.py
	KERAS_BACKEND=torch $(TORCH_VENV)/bin/python tests/fixtures/reference/make_keras.py
	$(TORCH_VENV)/bin/python tests/fixtures/reference/make_packages.py

clean:
	rm -rf $(VENV) $(TORCH_VENV) .pytest_cache
	find . -name __pycache__ -prune -exec rm -rf {} +
