# The two commands of the README. Both install what is missing first (tools/setup.sh).
BUILD ?= build
JOBS ?= $(shell nproc)

.PHONY: all setup build run test clean

all: build

setup:
	@bash tools/setup.sh

build: setup
	@cmake -S . -B $(BUILD) -G Ninja >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# Until the model issue lands, the main job is an honest placeholder: generate a small BF16
# checkpoint, quantize it to NVFP4 with fp4llm and inspect the result.
run: build
	@bash tools/run_default.sh $(BUILD)

test: build
	@bash tools/run_tests.sh $(BUILD) $(JOBS)

clean:
	rm -rf $(BUILD)
