"""Every shell command in the docs site's pages and the README's code blocks runs, against small generated data.

Each command is taken as the README writes it (continuation lines joined, comments dropped) and changed only
by: paths (`/data/UCF101` -> a generated UCF101 layout, `RUN` -> a run an earlier command made, a camera or
URL -> a generated video), the `tiny` preset for the model presets, and appended bounding flags (steps, batch
size, epochs, seconds, worker processes). Commands that need a GPU, full TensorRT or nvcc (DECISIONS §7) and
placeholders are listed in NOT_RUNNABLE with the reason; a README command in neither list fails the test, so a
new command is either run here or explained.

`stop-train` and `stop-export` run in this process (their `main`, as the console scripts call it: no second
PyTorch import per command); `stop-recognize`, `stop-gui`, `torchrun` and `make` run as subprocesses.
The commands run in the order of the docs site's navigation (mkdocs.yml), then the README's (its walk repeats
commands of the pages, which run once): later ones use what earlier ones made.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import layouts
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
REPO = README.parent
MKDOCS = REPO / "mkdocs.yml"
BIN = Path(sys.executable).parent

NOT_RUNNABLE = {
    "make test": "this suite is what `make test` runs",
    "torchrun --nnodes 2 --node_rank 0 --master_addr HOST --nproc_per_node 8 -m stop_train.cli train ...": "placeholder: a second node and the training flags (`...`) are the reader's",
    "stop-recognize model.onnx --source rtsp://cam/stream --backend cuda --reconnect 5": "--backend cuda needs a GPU (ONNX Runtime's CUDA provider)",
    "stop-export RUN --fp16 --build-plugin --plugin-target jetson": "builds the plugin against full TensorRT (10/11)",
    "TENSORRT_ROOT=/opt/TensorRT-10.8 stop-export RUN --engine --plugin build/plugin/tpi-plugin/libstop_tpi_plugin.so": "needs full TensorRT (10/11) and its plugin library",
    "stop-recognize RUN/export/model-fp16.engine --source 0": "runs a TensorRT engine: needs a GPU",
    "STOP_TPI_PLUGIN=/path/libstop_tpi_plugin.so stop-recognize model-fp16.engine --source video.mp4": "runs a TensorRT engine with the plugin: needs a GPU and full TensorRT",
    "stop-gui --model model-fp16.engine --source rtsp://cam/stream": "runs a TensorRT engine: needs a GPU",
    "stop-recognize model-fp16.engine --plugin /path/libstop_tpi_plugin.so --source video.mp4": "runs a TensorRT engine with the plugin: needs a GPU and full TensorRT",
}

TRAIN_BOUND = ["--max-steps", "2", "--batch-size", "4", "--workers", "0"]  # the large label sets: two steps
EPOCH_BOUND = ["--epochs", "1", "--batch-size", "4", "--workers", "0"]  # small sets: the whole run, test included
# appended flags (bounds), and what the output must show, per command
PLAN: dict[str, tuple[list[str], str]] = {
    "make demo": ([], ""),  # expanded below: each recipe line of `make -n demo`, bounded
    "stop-train check /data/UCF101": ([], " read exactly, 0 read by decoding, 0 unreadable"),
    "stop-train --dataset ucf101 --data-root /data/UCF101 --fold 1": (TRAIN_BOUND, "stopped after 2 steps"),
    "stop-train --dataset hmdb51 --data-root /data/hmdb51 --model mode=official --model frames=12": (
        TRAIN_BOUND,
        "stopped after 2 steps",
    ),
    "stop-train --dataset kinetics400 --data-root /data/kinetics400 --video-dir videos": (TRAIN_BOUND, "stopped after"),
    "stop-train --dataset ssv2 --data-root /data/ssv2 --video-dir videos_mp4": (TRAIN_BOUND, "stopped after"),
    "stop-train --dataset list --data-root /data/clips --train-list train.txt --val-list val.txt --no-flip-safe": (
        EPOCH_BOUND,
        "val top-1",
    ),
    "stop-train --dataset folder --data-root /data/my_actions --val-fraction 0": (EPOCH_BOUND, "no test ran"),
    "stop-train --dataset synthetic-motion --preset tiny --epochs 18 --batch-size 8 --lr 3e-4": (
        EPOCH_BOUND,
        "test top-1",
    ),
    "stop-train --resume runs/ucf101-stop-b32-20261125-101500": (
        ["--max-steps", "3", "--workers", "0"],
        "stopped after 3",
    ),
    "stop-train eval RUN_DIR --split test --test-clips 3 --test-crops 3": (["--workers", "0"], '"top1"'),
    "stop-train convert pytorch_model.bin converted_published/ --frames 12": ([], "official mode, T=12"),
    "stop-train eval converted_published/ --dataset hmdb51 --data-root /data/hmdb51 --fold 1": (
        ["--workers", "0"],
        '"top1"',
    ),
    "stop-train folds RUN_FOLD1 RUN_FOLD2 RUN_FOLD3": ([], '"top1"'),
    "stop-train stats RUN_DIR": (["--workers", "0"], "class statistics of"),
    "torchrun --nproc_per_node 4 -m stop_train.cli train --dataset ucf101 --data-root /data/UCF101": (
        ["--max-steps", "1", "--batch-size", "2", "--workers", "0"],
        "stopped after 1 steps",
    ),
    "stop-export runs/demo-20261125-130000 --check": ([], "top-1 agreement"),
    "stop-export stop-b32 --labels ucf101 -o b32.onnx": ([], "b32.onnx"),
    "stop-export converted_published/ --labels hmdb51": ([], "model.onnx"),
    "stop-recognize RUN/export/model.onnx --source video.mp4": ([], "video (live"),
    "stop-recognize model.onnx --source 0 --json --events events.jsonl": ([], '"top"'),
    "stop-recognize model.onnx --source /dev/video0": ([], "video (live"),
    "stop-recognize model.onnx --source video.mp4 --protocol eval": ([], ""),
    "stop-recognize model.onnx --source video.mp4 --labels my_classes.txt": ([], "standing still"),
    "stop-export RUN --fp16": ([], "model-fp16.engine"),
    "stop-train --dataset msrvtt --data-root /data/MSRVTT --epochs 5": (TRAIN_BOUND, "stopped after 2 steps"),
    "stop-train --dataset msrvtt --data-root /data/MSRVTT --video-dir /data/MSRVTT/compressed_3fps --train-list "
    "MSRVTT_train.7k.csv": (TRAIN_BOUND, "stopped after 2 steps"),
    "stop-train --dataset captions --data-root /data/my_captions --preset tiny": (EPOCH_BOUND, "text->video R@1"),
    "stop-train eval converted_published/ --task retrieval --dataset msrvtt --data-root /data/MSRVTT": (
        ["--workers", "0"],
        '"t2v_R1"',
    ),
    "stop-export RUN_RETRIEVAL --check": ([], "PASS"),
    "stop-search index RUN_RETRIEVAL/export/model.onnx /data/my_captions -o my_videos --ann": ([], "windows"),
    "stop-search query my_videos 'a person opening a valve' --top 5": ([], "  1. "),
    "stop-teach add RUN/export/model.onnx --bank site.json --label 'opening a valve' valve.mp4@1.5-4 valve.mp4@0-1.5": (
        [],
        "saved",
    ),
    "stop-teach add RUN/export/model.onnx --bank site.json --label 'station 3 check' --no-text check1.mp4 check2.mp4": (
        [],
        "example-only",
    ),
    "stop-teach list --bank site.json": ([], "opening a valve: 2 examples"),
    "stop-teach tune RUN/export/model.onnx --bank site.json": ([], "tuned leave-one-out"),
    # the demo run's model carries its class statistics; labels of its own file have no clips behind them
    "stop-recognize RUN/export/model.onnx --bank site.json --source video.mp4": ([], "scored by the class means"),
    "stop-recognize RUN/export/model.onnx --bank site.json --labels my_classes.txt --source 0": ([], "example cache"),
    "stop-teach remove 'opening a valve' --bank site.json --example 1": ([], "removed example 1"),
    "stop-gui --model RUN/export/model.onnx --bank site.json --source 0": (["--quit-after", "4"], ""),
    "stop-gui": (["--quit-after", "3"], ""),
    "stop-gui --model RUN/export/model.onnx --source 0": (["--quit-after", "4"], ""),
    "stop-gui --model model.onnx --source clip.mp4 --loop --screenshot shot.png --quit-after 8": (
        ["--quit-after", "4"],
        "",
    ),
}


def doc_pages() -> list[Path]:
    """The docs site's pages in navigation order, then the README."""
    import yaml

    config = yaml.safe_load(MKDOCS.read_text(encoding="utf-8"))
    docs = REPO / config.get("docs_dir", "docs")

    def walk(nav) -> list[str]:
        items = nav.values() if isinstance(nav, dict) else nav
        return [p for item in items for p in ([item] if isinstance(item, str) else walk(item))]

    return [docs / page for page in walk(config["nav"])] + [README]


def readme_commands() -> list[str]:
    """The shell commands of the ```sh blocks of every page and the README, in order, each once: continuations
    joined, comments dropped."""
    commands = []
    for page in doc_pages():
        for block in re.findall(r"```sh\n(.*?)```", page.read_text(encoding="utf-8"), re.S):
            for line in block.replace("\\\n", " ").splitlines():
                words = shlex.split(line, comments=True)
                if words and shlex.join(words) not in commands:  # arguments with spaces stay quoted
                    commands.append(shlex.join(words))
    return commands


def test_the_pages_hold_commands():
    """Each page that documents a console script shows it in a ```sh block this test runs (a block written as
    ```bash or ```shell would be skipped silently)."""
    pages = doc_pages()
    assert len(pages) >= 11 and all(p.is_file() for p in pages), pages
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert not re.search(r"```(bash|shell|console)\n", text), f"{page.name}: write shell blocks as ```sh"
    commands = readme_commands()
    for script in ("stop-train", "stop-export", "stop-recognize", "stop-gui", "stop-search", "stop-teach", "make"):
        assert any(c.split()[0] == script for c in commands), f"no page runs {script}"


def test_every_readme_command_is_run_or_explained():
    commands = readme_commands()
    unplanned = [c for c in commands if c not in PLAN and c not in NOT_RUNNABLE]
    assert not unplanned, f"README commands neither run by this test nor listed as not runnable: {unplanned}"
    stale = [c for c in [*PLAN, *NOT_RUNNABLE] if c not in commands]
    assert not stale, f"planned commands no longer in the README: {stale}"
    for command, reason in NOT_RUNNABLE.items():
        print(f"not run: {command}  -- {reason}")


class World:
    """The generated data and the artefacts earlier commands leave in `cwd`."""

    def __init__(self, root: Path):
        self.root = root
        self.cwd = root / "work"
        self.cwd.mkdir()
        pool = layouts.ClipPool(root / "pool")
        self.data = {
            "/data/UCF101": layouts.write_ucf101(root / "UCF101", pool),
            "/data/hmdb51": layouts.write_hmdb51(root / "hmdb51", pool),
            "/data/kinetics400": layouts.write_kinetics400(root / "kinetics400", pool),
            "/data/ssv2": layouts.write_ssv2(root / "ssv2", pool),
            "/data/clips": layouts.write_list(root / "clips", pool),
            "/data/my_actions": layouts.write_folder(root / "my_actions", pool),
        }
        self.data.update(write_caption_sets(root))
        from stop_train.data.synthetic import SyntheticSpec, write_synthetic_motion

        self.synthetic = write_synthetic_motion(
            root / "synthetic", SyntheticSpec(groups=3, clips_per_group=1, frames=12, width=48, height=32)
        )
        self.video = self.synthetic / "UCF-101" / "MovingLeft" / "v_MovingLeft_g01_c01.avi"
        (self.cwd / "my_classes.txt").write_text("moving left\nmoving right\nstanding still\n")
        import numpy as np

        from stop_train.data.synthetic import render_scene, write_video

        rng, self.examples = np.random.default_rng(0), {}
        for name, kind, frames in (
            ("valve.mp4", "GrowingBigger", 125),
            ("check1.mp4", "MovingUp", 25),
            ("check2.mp4", "MovingUp", 25),
        ):
            self.examples[name] = root / "examples" / name.replace(".mp4", ".avi")
            write_video(
                self.examples[name], render_scene(kind, SyntheticSpec(frames=frames, width=48, height=32), rng), fps=25
            )
        write_published_checkpoint(self.cwd / "pytorch_model.bin")

    def run(self, prefix: str) -> Path:
        """The run directory a training command wrote under `cwd/runs/` (named `<dataset>-<preset>-<time>`)."""
        found = sorted((self.cwd / "runs").glob(prefix + "-*"))
        if not found:
            pytest.fail(f"no run {prefix}-* yet: the README commands run in order (run the whole file)")
        return found[-1]

    def substitute(self, word: str) -> str:
        runs = {
            "runs/ucf101-stop-b32-20261125-101500": "ucf101-tiny",
            "RUN_DIR": "ucf101-tiny",
            "RUN_FOLD1": "ucf101-tiny",
            "RUN_FOLD2": "synthetic-motion-tiny",
            "RUN_FOLD3": "synthetic-motion-tiny",
            "runs/demo-20261125-130000": "synthetic-motion-tiny",
            "RUN": "synthetic-motion-tiny",
        }
        if word in self.data:
            return str(self.data[word])
        for root, path in self.data.items():  # a folder inside a dataset root
            if word.startswith(root + "/"):
                return str(path) + word[len(root) :]
        if word in runs:
            return str(self.run(runs[word]))
        if word == "RUN_RETRIEVAL":
            return str(self.run("captions-tiny"))
        if word.startswith("RUN_RETRIEVAL/"):
            return str(self.run("captions-tiny") / word[len("RUN_RETRIEVAL/") :])
        if word.startswith("RUN/"):
            return str(self.run("synthetic-motion-tiny") / word[len("RUN/") :])
        if word == "model.onnx":
            return str(self.run("synthetic-motion-tiny") / "export" / "model.onnx")
        if word in ("video.mp4", "clip.mp4", "/dev/video0"):
            return str(self.video)
        name, at, clip_range = word.partition("@")
        if name in self.examples:  # stop-teach's example clips, with their time range
            return str(self.examples[name]) + at + clip_range
        return word


def write_caption_sets(root: Path) -> dict[str, Path]:
    """/data/MSRVTT: generated synthetic-captions in the MSR-VTT layout, cut to 12 training and 6 test videos
    (9k and 7k lists), with a second video folder; /data/my_captions: a generic captions folder."""
    import csv

    from stop_train.data.synthetic_captions import SyntheticCaptionsSpec, write_synthetic_captions

    msrvtt = write_synthetic_captions(
        root / "MSRVTT", SyntheticCaptionsSpec(train_per_combo=1, frames=12, width=48, height=32)
    )
    (msrvtt / "MSRVTT_train.9k.csv").write_text("video_id\n" + "".join(f"video{i}\n" for i in range(0, 108, 9)))
    (msrvtt / "MSRVTT_train.7k.csv").write_text("video_id\n" + "".join(f"video{i}\n" for i in range(0, 108, 12)))
    rows = list(csv.reader(open(msrvtt / "MSRVTT_JSFUSION_test.csv")))
    (msrvtt / "MSRVTT_JSFUSION_test.csv").write_text("\n".join(",".join(r) for r in [rows[0], *rows[1::18]]) + "\n")
    (msrvtt / "compressed_3fps").symlink_to(msrvtt / "videos" / "all")
    own = root / "my_captions"
    (own / "clips").mkdir(parents=True)
    lines = {"train": ["video,caption"], "test": ["video,caption"]}
    for i, row in enumerate(rows[1:25]):  # 24 videos: 16 train, 8 test
        (own / "clips" / f"{row[2]}.mp4").symlink_to(msrvtt / "videos" / "all" / f"{row[2]}.mp4")
        lines["train" if i < 16 else "test"].append(f"clips/{row[2]}.mp4,{row[3]}")
    for split, text in lines.items():
        (own / f"{split}.csv").write_text("\n".join(text) + "\n")
    return {"/data/MSRVTT": msrvtt, "/data/my_captions": own}


def write_published_checkpoint(path: Path) -> None:
    """A checkpoint in the published code's names (a tiny official-mode model, 8 text prompts, T = 12)."""
    import torch

    from stop_train.model import create_model
    from stop_train.model.convert import rename_state_dict

    model = create_model(
        "tiny",
        mode="official",
        mask_layout="lattice",
        frames=12,
        local_prompts=4,
        text_prefix_prompts=4,
        text_postfix_prompts=4,
        spatial_topk=6,
        global_prompts=4,
    )
    inverse = [
        (r"^spatial\.conv\.", "visual.TemporalPrompt.Conv."),
        (r"^spatial\.mlp\.", "visual.TemporalPrompt.MLP."),
        (r"^spatial\.score_net\.", "visual.TemporalPrompt.Cal_Net."),
        (r"^temporal\.attention\.", "visual.TemporalPrompt.Attention."),
        (r"^temporal\.conv\.", "visual.TemporalPrompt.InterConv."),
        (r"^temporal\.mlp\.", "visual.TemporalPrompt.InterMLP."),
        (r"^temporal\.score_net\.", "visual.TemporalPrompt.Cal_Net_Inter."),
        (r"^visual_adapters\.(\d+)\.", r"visual.transformer.resblocks.\1.LoRA."),
        (r"^text_adapters\.(\d+)\.", r"transformer.resblocks.\1.LoRA."),
        (r"^global_prompts$", "visual.prompt_embeddings"),
        (r"^prompts\.embedding\.weight$", "unified_prompt_embedding.weight"),
        (r"^prompts\.block\.", "PromptTransformer.resblocks.0."),
        (r"^prompts\.text_mlp\.", "unified_prompt_mlp."),
        (r"^clip\.", ""),
    ]
    published = {}
    for key, value in model.state_dict().items():
        for pattern, repl in inverse:
            new, hits = re.subn(pattern, repl, key)
            if hits:
                published["clip." + new] = value.half()  # as CLIP4Clip saves them
                break
        else:
            raise AssertionError(f"no published name for {key}")
    assert set(rename_state_dict({k[len("clip.") :]: v for k, v in published.items()})) == set(model.state_dict())
    torch.save(published, path)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    return World(tmp_path_factory.mktemp("readme"))


def bounded(command: str, world: World) -> tuple[dict[str, str], list[str]]:
    """(environment additions, argv) of a README command as this test runs it."""
    words = shlex.split(command)
    env = {}
    while words and re.match(r"^[A-Z_]+=", words[0]):
        key, _, value = words.pop(0).partition("=")
        env[key] = value
    argv = []
    for i, word in enumerate(words):
        after = words[i - 1] if i else ""
        if after == "--source" and word.isdigit() or word.startswith("rtsp://"):
            word = str(world.video)  # a camera or a stream: the generated video
        elif after == "--preset" or (word == "stop-b32" and words[0] == "stop-export"):
            word = "tiny"
        elif after == "--nproc_per_node":
            word = "2"  # the 2 cores of CI, on gloo
        argv.append(world.substitute(word))
    trains = argv[0] == "torchrun" or (
        argv[0] == "stop-train" and (len(argv) == 1 or argv[1].startswith("--")) and "--resume" not in argv
    )
    if trains and "--preset" not in argv:
        argv += ["--preset", "tiny"]
    if trains and argv[argv.index("--dataset") + 1] == "synthetic-motion" and "--data-root" not in argv:
        argv += ["--data-root", str(world.synthetic)]  # the README's default root, generated smaller
    return env, argv + PLAN[command][0]


def run_in_process(argv: list[str], capsys) -> tuple[int, str]:
    if argv[0] == "stop-train":
        from stop_train.cli import main
    else:
        from stop_export.cli import export_main as main
    code = main(argv[1:])
    out = capsys.readouterr()
    return code, out.out + out.err


def run_subprocess(env: dict[str, str], argv: list[str], cwd: Path, timeout: float = 300) -> tuple[int, str]:
    program = BIN / argv[0]
    if argv[0] in ("stop-recognize", "stop-gui", "torchrun", "stop-search", "stop-teach"):
        argv = [str(program), *argv[1:]]
    # the app remembers settings under XDG_CONFIG_HOME: a test world keeps its own, never the user's
    full_env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "OMP_NUM_THREADS": "1",
        "XDG_CONFIG_HOME": str(cwd / ".config"),
        **env,
    }
    result = subprocess.run(argv, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)
    return result.returncode, result.stdout + result.stderr


def make_demo_lines(world: World) -> list[list[str]]:
    """`make -n demo`'s recipe lines that run the toolkit (not the environment set-up), bounded."""
    result = subprocess.run(
        [
            "make",
            "-n",
            "demo",
            f"VENV={BIN.parent}",
            f"DEMO_RUN={world.cwd / 'runs' / 'demo'}",
            f"DEMO_VIDEO={world.video}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    lines = []
    for line in result.stdout.replace("\\\n", " ").splitlines():
        words = shlex.split(line)
        if not words or not (any(w.startswith("stop_train") for w in words) or Path(words[0]).name.startswith("stop-")):
            continue  # setting up the environment
        if "-m" in words and "stop_train.cli" in words:
            words += ["--data-root", str(world.synthetic), "--max-steps", "2", "--workers", "0"]
        lines.append(words)
    assert any("stop_train.cli" in w for w in lines) and any("stop-recognize" in w[0] for w in lines), lines
    return lines


@pytest.mark.parametrize("command", [c for c in readme_commands() if c in PLAN])
def test_readme_command(command, world, capsys, monkeypatch):
    monkeypatch.chdir(world.cwd)
    if command == "make demo":
        for words in make_demo_lines(world):
            code, out = run_subprocess({}, words, world.cwd, timeout=600)
            assert code == 0 and "Traceback" not in out, f"{' '.join(words)}\n{out[-3000:]}"
        return
    env, argv = bounded(command, world)
    if argv[0] in ("stop-train", "stop-export") and not env:
        code, out = run_in_process(argv, capsys)
    else:
        code, out = run_subprocess(env, argv, world.cwd)
    assert code == 0, f"{' '.join(argv)} exited {code}:\n{out[-3000:]}"
    assert "Traceback" not in out, out[-3000:]
    expected = PLAN[command][1]
    assert expected in out, f"{' '.join(argv)}: {expected!r} not in the output:\n{out[-3000:]}"
    if "--screenshot" in argv:
        assert (world.cwd / argv[argv.index("--screenshot") + 1]).stat().st_size > 0
    if "--events" in argv:
        assert (world.cwd / argv[argv.index("--events") + 1]).is_file()
