"""Loads Warden's red-team training exports with Hugging Face `datasets` (the reader TRL's trainers use)
and checks the columns TRL's DPOTrainer (conversational preference) and GRPOTrainer (conversational
prompt plus extra columns) read. Prints one JSON line of facts; exits 1 with the reason on any mismatch.

Usage: check_exports.py DIR
"""
import json
import sys

from datasets import Value, load_dataset

directory = sys.argv[1]


def fail(message):
    print(json.dumps({"error": message}))
    sys.exit(1)


def load(name):
    return load_dataset("json", data_files=f"{directory}/{name}.jsonl", split="train")


def check_messages(column, roles, where):
    feature = column.feature if hasattr(column, "feature") else None
    if not isinstance(feature, dict) or "role" not in feature or "content" not in feature:
        fail(f"{where}: not a list of messages with role and content, but {column}")
    return True


steps = load("steps")
for name in ["trial", "agent", "variant", "mode", "observation"]:
    if steps.features[name] != Value("string"):
        fail(f"steps.{name} is {steps.features[name]}")
if steps.features["reward"] != Value("float64"):
    fail(f"steps.reward is {steps.features['reward']}, not float64")

dpo = load("dpo")
for name in ["prompt", "chosen", "rejected"]:
    check_messages(dpo.features[name], None, f"dpo.{name}")
for row in dpo:
    if [m["role"] for m in row["prompt"]] != ["system", "user"]:
        fail("a DPO prompt is not [system, user]")
    if row["chosen"][0]["role"] != "assistant" or row["rejected"][0]["role"] != "assistant":
        fail("a DPO completion does not start with the assistant")

grpo = load("grpo")
check_messages(grpo.features["prompt"], None, "grpo.prompt")
check_messages(grpo.features["completion"], None, "grpo.completion")
if grpo.features["reward"] != Value("float64"):
    fail(f"grpo.reward is {grpo.features['reward']}, not float64")

print(json.dumps({"steps": steps.num_rows, "dpo": dpo.num_rows, "grpo": grpo.num_rows,
                  "datasets": __import__("datasets").__version__}))
