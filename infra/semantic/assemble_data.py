"""Assemble the semantic tier's training data into infra/semantic/data/ (see README.md).

    python infra/semantic/assemble_data.py MIRRORS_DIR

MIRRORS_DIR holds bare git snapshots of the public repositories named in SOURCES (one
folder per repository, `owner+name/repo`); each file is read at the pinned commit, so
the output is the same on every machine. Authored sentences come from authored.py.
Writes data/single.jsonl ({text, label, source}) and data/conversations.jsonl
({turns, label, source}).
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import random
import subprocess
import sys
from pathlib import Path

import authored as A

HERE = Path(__file__).resolve().parent
SEED = 12

# repository, commit, path: every public file the data comes from.
ADVERSARIA = ("busycalibrating/AdversariaLLM", "f970939273ea17b491fadf6001fddc36ed3ae3ff")
JBB = ("JailbreakBench/artifacts", None)
LATENT = ("Carol-gutianle/LatentSafety", "e48e3b545bece62600454ce501ee977969d7711a")
BIPIA = ("microsoft/BIPIA", None)
ALPACA = ("tatsu-lab/stanford_alpaca", None)
SELF_INSTRUCT = ("yizhongw/self-instruct", None)


def show(mirrors: Path, repo: tuple[str, str | None], path: str) -> str:
    git_dir = mirrors / repo[0].replace("/", "+") / "repo"
    commit = repo[1] or "HEAD"
    return subprocess.run(
        ["git", f"--git-dir={git_dir}", "show", f"{commit}:{path}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def commit_of(mirrors: Path, repo: tuple[str, str | None]) -> str:
    git_dir = mirrors / repo[0].replace("/", "+") / "repo"
    return subprocess.run(
        ["git", f"--git-dir={git_dir}", "rev-parse", repo[1] or "HEAD"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


OWN = ("benign_lookalikes", "benign_conversations", "benign_sessions", "attack_conversations")


def own_conversations() -> dict[str, list[dict[str, object]]]:
    """User turns of tests/unit/scan conversations, split 70/30 by a hash of their text."""
    split: dict[str, list[dict[str, object]]] = {"train": [], "dev": []}
    for name in OWN:
        path = HERE.parents[1] / "tests" / "unit" / "scan" / f"{name}.jsonl"
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            turns = [m["content"] for m in row["messages"] if m["role"] == "user"]
            digest = hashlib.sha256("\n".join(turns).encode()).digest()[0]
            part = "train" if digest % 10 < 7 else "dev"
            split[part].append({"turns": turns, "label": int(row.get("label", 0)), "source": name})
    return split


def main(mirrors: Path) -> None:
    rng = random.Random(SEED)
    rows: list[dict[str, str]] = []

    def add(text: str, label: str, source: str) -> None:
        text = " ".join(text.split()) if len(text) < 400 else text.strip()
        if text:
            rows.append({"text": text, "label": label, "source": source})

    # Harmful requests.
    hb = csv.DictReader(
        io.StringIO(
            show(mirrors, ADVERSARIA, "data/behavior_datasets/harmbench_behaviors_text_all.csv")
        )
    )
    for r in hb:
        if not r["ContextString"].strip():
            add(r["Behavior"], "harmful", "harmbench")
    sr = csv.DictReader(
        io.StringIO(show(mirrors, ADVERSARIA, "data/behavior_datasets/strongreject_dataset.csv"))
    )
    for r in sr:
        if r["source"].strip().upper() != "DAN":  # DAN-sourced rows may overlap reserved data
            add(r["forbidden_prompt"], "harmful", "strongreject")
    adv = csv.reader(io.StringIO(show(mirrors, LATENT, "data/advbench/harmful_behaviors.csv")))
    next(adv)
    for r in adv:
        add(r[0], "harmful", "advbench")
    harmful_train = json.loads(
        show(mirrors, ADVERSARIA, "data/refusal_direction/harmful_train.json")
    )
    for r in harmful_train:
        add(r["instruction"], "harmful", "refusal_direction_harmful")

    # Jailbreak wrappers around harmful goals (not jailbreakchat templates: JBC is skipped).
    for method, folder in (
        ("PAIR", "black_box"),
        ("prompt_with_random_search", "black_box"),
        ("GCG", "transfer"),
        ("DSN", "white_box"),
    ):
        git_dir = mirrors / "JailbreakBench+artifacts" / "repo"
        names = subprocess.run(
            [
                "git",
                f"--git-dir={git_dir}",
                "ls-tree",
                "--name-only",
                "HEAD",
                f"attack-artifacts/{method}/{folder}/",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        for name in names:
            for jb in json.loads(show(mirrors, JBB, name))["jailbreaks"]:
                if jb.get("prompt"):
                    add(jb["prompt"], "jailbreak", f"jbb_{method.lower()}")

    # Benign instructions.
    harmless = json.loads(show(mirrors, ADVERSARIA, "data/refusal_direction/harmless_train.json"))
    for r in rng.sample(harmless, 10000):
        add(r["instruction"], "benign", "alpaca_harmless")
    for line in show(mirrors, ALPACA, "seed_tasks.jsonl").splitlines():
        task = json.loads(line)
        inst = task["instruction"]
        first = task["instances"][0]["input"] if task["instances"] else ""
        add(f"{inst}\n{first}".strip(), "benign", "alpaca_seed")
    for name in ("benchmark/code/train.jsonl", "benchmark/email/train.jsonl"):
        for line in show(mirrors, BIPIA, name).splitlines():
            context = json.loads(line)["context"]
            text = "\n".join(context) if isinstance(context, list) else context
            add(text[:3000], "benign", "bipia_context")  # code answers and emails, no attack
    for line in show(
        mirrors, SELF_INSTRUCT, "human_eval/user_oriented_instructions.jsonl"
    ).splitlines():
        task = json.loads(line)
        first = task["instances"][0]["input"] if task.get("instances") else ""
        add(f"{task['instruction']}\n{first}".strip(), "benign", "self_instruct_user")
    t0 = show(
        mirrors,
        SELF_INSTRUCT,
        "data/finetuning/t0_train_50k/data_per_template/"
        "adversarial_qa_dbert_answer_the_following_q.jsonl",
    ).splitlines()
    for line in rng.sample(
        t0, min(800, len(t0))
    ):  # long passages with a question: length is not intent
        add(json.loads(line)["prompt"], "benign", "t0_adversarial_qa")
    for name in ("benchmark/text_attack_train.json",):
        for _category, texts in json.loads(show(mirrors, BIPIA, name)).items():
            for t in texts:  # injected instructions of BIPIA; harmless on their own
                add(t, "benign", "bipia_text_task")

    # Authored attacks.
    for template, task in itertools.product(A.OVERRIDES, A.OVERRIDE_TASKS):
        if rng.random() < 0.45:
            add(template.format(task=task), "injection", "authored_override")
    for text in A.EXTRACTION:
        add(text, "injection", "authored_extraction")
    for template in A.PERSONAS:
        for _ in range(10):
            name, ask = rng.choice(A.PERSONA_NAMES), rng.choice(A.PERSONA_ASKS)
            add(
                template.format(name=name, ask=ask, ask_bare=ask.rstrip("?.")),
                "jailbreak",
                "authored_persona",
            )
    for intent in A.HARMFUL_INTENTS:
        add(intent + ".", "harmful", "authored_intent")
    for request in A.HARMFUL_REQUESTS:
        add(request, "harmful", "authored_request")
        add(request.capitalize() + "?", "harmful", "authored_request")

    # Authored benign look-alikes.
    for text in A.BENIGN_STATEMENTS:
        add(text + ".", "benign", "authored_lookalike")
    for template, crime in itertools.product(A.BENIGN_QUESTIONS, A.CRIMES):
        add(template.format(crime=crime), "benign", "authored_definition")
    for template, (game, enemy) in itertools.product(A.GAME_QUESTIONS, A.GAMES):
        add(template.format(game=game, enemy=enemy), "benign", "authored_game")
    for template, event in itertools.product(A.HISTORY_QUESTIONS, A.EVENTS):
        add(template.format(event=event), "benign", "authored_history")
    for text in A.HOMONYMS:
        add(text, "benign", "authored_homonym")
    for template, thing in itertools.product(A.SAFETY_QUESTIONS, A.SAFETY_THINGS):
        add(template.format(thing=thing), "benign", "authored_safety")
    for text in A.BENIGN_HOW_TO:
        add(text, "benign", "authored_how_to")
    for text in A.BENIGN_ROLE_PLAY:
        add(text, "benign", "authored_role_play")
    for text in A.BENIGN_SECURITY:
        add(text, "benign", "authored_security")
    for follow in A.FOLLOW_UPS + A.HELP_FOLLOW_UPS:  # alone, a follow-up asks for nothing
        add(follow, "benign", "authored_follow_up")

    # The project's own conversations from the previous scan issue (tests/unit/scan):
    # seven in ten train, the rest stay a development check (see README.md).
    own = own_conversations()
    for conversation in own["train"]:
        if conversation["label"] == 0:
            for text in conversation["turns"]:
                add(text, "benign", "turnwall_tests_benign")

    seen: set[str] = set()
    unique = []
    for r in rows:
        key = r["text"].lower()
        if key not in seen:
            seen.add(key)
            unique.append(r)
    out = HERE / "data"
    out.mkdir(exist_ok=True)
    with (out / "single.jsonl").open("w", encoding="utf-8") as f:
        for r in unique:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")

    # Conversations for the session head: earlier turns, then the turn being judged.
    harmful_first = [r["text"] for r in unique if r["label"] == "harmful"]
    benign_first = [
        r["text"]
        for r in unique
        if r["source"].startswith("authored_")
        and r["label"] == "benign"
        and r["source"] != "authored_follow_up"
    ]
    plain_benign = [r["text"] for r in unique if r["source"] == "alpaca_harmless"]
    convs = []
    for _ in range(1500):  # harmful topic, then a follow-up that only refers back
        turns = [rng.choice(harmful_first)]
        if rng.random() < 0.3:
            turns.insert(0, rng.choice(plain_benign))
        convs.append(
            {"turns": [*turns, rng.choice(A.FOLLOW_UPS)], "label": 1, "source": "harm+follow_up"}
        )
    for _ in range(1500):  # look-alikes, then a follow-up
        turns = rng.sample(benign_first, rng.randint(1, 3))
        convs.append(
            {
                "turns": [*turns, rng.choice(A.FOLLOW_UPS)],
                "label": 0,
                "source": "lookalike+follow_up",
            }
        )
    for _ in range(1000):  # look-alikes in a row
        turns = rng.sample(benign_first, rng.randint(2, 4))
        convs.append({"turns": turns, "label": 0, "source": "lookalike_run"})
    for _ in range(700):  # plain benign, then a follow-up
        turns = rng.sample(plain_benign, rng.randint(1, 3))
        convs.append(
            {"turns": [*turns, rng.choice(A.FOLLOW_UPS)], "label": 0, "source": "benign+follow_up"}
        )
    for _ in range(500):  # a harmful topic, then asking for help or changing the subject
        last = rng.choice(A.HELP_FOLLOW_UPS) if rng.random() < 0.4 else rng.choice(plain_benign)
        convs.append(
            {"turns": [rng.choice(harmful_first), last], "label": 0, "source": "harm+topic_change"}
        )
    for conversation in own["train"]:  # every prefix that ends on a later user turn
        for end in range(2, len(conversation["turns"]) + 1):
            convs.append(
                {
                    "turns": conversation["turns"][:end],
                    "label": conversation["label"],
                    "source": "turnwall_tests_" + ("attack" if conversation["label"] else "benign"),
                }
            )
    with (out / "conversations.jsonl").open("w", encoding="utf-8") as f:
        for c in convs:
            f.write(json.dumps(c, ensure_ascii=False) + "\n")
    commits = {
        repo: commit_of(mirrors, (repo, c))
        for repo, c in (ADVERSARIA, JBB, LATENT, BIPIA, ALPACA, SELF_INSTRUCT)
    }
    (out / "sources.json").write_text(json.dumps(commits, indent=2) + "\n")
    counts: dict[str, int] = {}
    for r in unique:
        counts[f"{r['label']}/{r['source']}"] = counts.get(f"{r['label']}/{r['source']}", 0) + 1
    for key in sorted(counts):
        print(f"{counts[key]:6d}  {key}")
    print(len(unique), "single rows;", len(convs), "conversations")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
