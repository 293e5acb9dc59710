"""Teachers from the Hugging Face Hub, ``hf://ORG/REPO[@REVISION][/FILE]``: downloaded and cached by huggingface_hub
(an optional extra, ``pip install 'rl-distill[hub]'``, imported only here and only when a hub teacher is asked for)
and loaded by the SB3 loader (teachers/sb3.py), which never unpickles.

rl-zoo3 publishes its agents as model repos ``sb3/<algo>-<env id>`` (``sb3/dqn-PongNoFrameskip-v4``) holding:

- ``<algo>-<env id>.zip``: the SB3 model, the file taken when the URI names none;
- ``config.yml``: rl-zoo3's hyperparameters (an OrderedDict dumped with a python tag), among them ``env_wrapper``
  (``stable_baselines3.common.atari_wrappers.AtariWrapper``, with or without its keyword arguments), ``frame_stack``
  and ``normalize``;
- ``env_kwargs.yml``: the keyword arguments of ``gym.make``;
- ``README.md``: the model card, whose front matter names the env (``model-index``, its dataset);
- ``results.json``: the zoo's own evaluation; ``vec_normalize.pkl`` where the agent normalised its observations.

The teacher's training protocol is read from these files, not assumed, and recorded in its meta: ``protocol`` (the
protocol it is evaluated under, which ``teachers eval`` plays) and ``hub`` (the repo, commit, file, what the files
said and ``train_protocol``). A ``<Game>NoFrameskip-v4`` teacher was trained without sticky actions, AtariWrapper
adding a 4-frame skip, up to 30 no-op starts, FIRE at reset, clipped rewards and a lost life ending the episode; the
suite plays that game as ``ALE/<Game>-v5`` (teachers/sb3.py's mapping) with the protocol set accordingly.

Offline (``HF_HUB_OFFLINE=1``) only the cache is read (``HF_HUB_CACHE``, else ``HF_HOME``/hub), and what is missing is
said in one line. Those variables are read at each call, not when huggingface_hub happens to be imported.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rl_distill.errors import TeacherError
from rl_distill.teachers.base import Teacher

PREFIX = "hf://"
INSTALL = "pip install 'rl-distill[hub]' (or pip install huggingface_hub)"
_META_FILES = ("config.yml", "env_kwargs.yml", "args.yml", "README.md", "results.json", "vec_normalize.pkl")
_NOT_MODELS = ("train_eval_metrics.zip",)  # rl-zoo3's zipped training logs, beside the model
_TRUE = ("1", "ON", "YES", "TRUE")  # huggingface_hub's spelling of a true environment variable


def is_hub_uri(source: Any) -> bool:
    """True for ``hf://...`` teacher sources."""
    return isinstance(source, str) and source.startswith(PREFIX)


def _line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _hub():
    """huggingface_hub, or a one-line error saying how to install it."""
    try:
        import huggingface_hub
    except ImportError:
        raise TeacherError(f"hf:// teachers need huggingface_hub, an optional extra: {INSTALL}") from None
    return huggingface_hub


def cache_dir() -> Path:
    """huggingface_hub's cache folder as the environment says now: ``HF_HUB_CACHE``, else ``HF_HOME``/hub, else
    ``~/.cache/huggingface/hub``."""
    env = os.environ
    folder = env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE")
    if not folder:
        home = env.get("HF_HOME") or os.path.join(env.get("XDG_CACHE_HOME") or "~/.cache", "huggingface")
        folder = os.path.join(home, "hub")
    return Path(os.path.expandvars(folder)).expanduser()


def offline() -> bool:
    """True where ``HF_HUB_OFFLINE`` is set: nothing is downloaded, the cache alone answers."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().upper() in _TRUE


@dataclass(frozen=True)
class HubRef:
    """A parsed ``hf://`` teacher source."""

    uri: str
    repo_id: str
    revision: str | None
    file: str | None
    """The SB3 zip's path in the repo; None: ``<REPO>.zip``, or the repo's only zip."""


def parse_uri(uri: str) -> HubRef:
    """``hf://ORG/REPO[@REVISION][/FILE]`` -> :class:`HubRef` (huggingface_hub's own URI grammar), model repos only."""
    hub = _hub()
    try:
        u = hub.parse_hf_uri(uri)
    except ValueError as e:  # HfUriError, HFValidationError
        raise TeacherError(f"bad hub teacher {uri!r}: expected hf://ORG/REPO[@REVISION][/FILE] ({_line(e)})") from None
    if u.type != "model":
        raise TeacherError(f"hub teacher {uri}: a {u.type} repo; teachers come from model repos (hf://ORG/REPO)")
    file = u.path_in_repo.strip("/") or None
    if file is not None and not file.endswith(".zip"):
        raise TeacherError(f"hub teacher {uri}: {file} is not an SB3 .zip (hf://ORG/REPO/FILE.zip)")
    return HubRef(uri, u.id, u.revision, file)


@dataclass(frozen=True)
class Snapshot:
    """A hub teacher's files in the cache."""

    ref: HubRef
    folder: Path
    """``<cache>/models--ORG--REPO/snapshots/<commit>``."""
    model: Path
    """The SB3 zip in ``folder``."""

    @property
    def commit(self) -> str:
        return self.folder.name

    def meta_file(self, name: str) -> Path | None:
        """``name`` (config.yml, ...) beside the model, else at the repo's root; None if neither is there."""
        for p in (self.model.parent / name, self.folder / name):
            if p.is_file():
                return p
        return None


def fetch(uri: str) -> Snapshot:
    """Download (or, offline, find in the cache) a hub teacher's zip and the rl-zoo3 files beside it.

    Raises a one-line :class:`TeacherError` for a malformed URI, a repo, revision or file that does not exist,
    an unreachable hub, or (offline) whatever the cache lacks. A failed download leaves no file in the snapshot
    (huggingface_hub writes each blob under a temporary name and links it when complete).
    """
    hub = _hub()
    ref = parse_uri(uri)
    subfolder = ref.file.rsplit("/", 1)[0] + "/" if ref.file and "/" in ref.file else ""
    patterns = [ref.file or "*.zip", *_META_FILES, *(subfolder + f for f in _META_FILES if subfolder)]
    no_network, cache = offline(), cache_dir()
    try:
        folder = hub.snapshot_download(
            ref.repo_id,
            revision=ref.revision,
            cache_dir=cache,
            local_files_only=no_network,
            allow_patterns=patterns,
            ignore_patterns=None if ref.file else list(_NOT_MODELS),
        )
    except Exception as e:  # huggingface_hub's errors, and the network's (httpx2) under them
        raise TeacherError(_download_error(hub, ref, e, no_network, cache)) from None
    folder = Path(folder)
    return Snapshot(ref, folder, _model_file(ref, folder, no_network))


def _fetch_first(ref: HubRef) -> str:
    return f"fetch it with network access first (rl-distill teachers fetch {ref.uri})"


def _download_error(hub: Any, ref: HubRef, e: Exception, no_network: bool, cache: Path) -> str:
    """The one line for a failed ``snapshot_download``."""
    errors = hub.errors
    if isinstance(e, errors.GatedRepoError):
        return f"{ref.uri}: {ref.repo_id} is gated on the Hugging Face Hub: accept its terms there, log in (HF_TOKEN)"
    if isinstance(e, errors.RepositoryNotFoundError):
        return f"{ref.uri}: no model repo {ref.repo_id} on the Hugging Face Hub (a private one needs HF_TOKEN)"
    if isinstance(e, errors.RevisionNotFoundError):
        return f"{ref.uri}: {ref.repo_id} has no revision {ref.revision!r}"
    if isinstance(e, errors.IncompleteSnapshotError):
        return f"{ref.uri}: the cached snapshot of {ref.repo_id} in {cache} is incomplete; {_fetch_first(ref)}"
    if isinstance(e, errors.LocalEntryNotFoundError):
        if no_network or isinstance(e.__cause__, errors.OfflineModeIsEnabled):
            what = ref.repo_id + (f" at revision {ref.revision}" if ref.revision else "")
            return f"{ref.uri}: {what} is not in the Hugging Face cache {cache} (HF_HUB_OFFLINE); {_fetch_first(ref)}"
        return f"{ref.uri}: the Hugging Face Hub cannot be reached and {ref.repo_id} is not in the cache {cache}"
    return f"cannot download {ref.uri}: {type(e).__name__}: {_line(e)}"


def _model_file(ref: HubRef, folder: Path, no_network: bool) -> Path:
    """The SB3 zip of the snapshot: the URI's file, else ``<REPO>.zip``, else the repo's only zip."""
    zips = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.zip") if p.name not in _NOT_MODELS)
    default = ref.repo_id.split("/")[-1] + ".zip"
    name = ref.file or (zips[0] if len(zips) == 1 and default not in zips else default)
    if ref.file is None and len(zips) > 1 and default not in zips:
        raise TeacherError(
            f"{ref.uri}: {ref.repo_id} holds {len(zips)} zips ({', '.join(zips[:4])}) and no {default}; "
            f"name one: hf://{ref.repo_id}/FILE"
        )
    path = folder / name
    if path.is_file():
        return path
    held = ", ".join(sorted(p.name for p in folder.iterdir())[:6] if folder.is_dir() else []) or "nothing"
    if no_network:
        raise TeacherError(
            f"{ref.uri}: the cached snapshot {folder.name[:12]} of {ref.repo_id} has no {name} (it holds {held}) "
            f"and HF_HUB_OFFLINE is set; {_fetch_first(ref)}"
        )
    raise TeacherError(f"{ref.uri}: {ref.repo_id} has no {name} (downloaded: {held})")


# --- what the hub files say ----------------------------------------------------------------------


def _yaml(path: Path) -> Any:
    """One of rl-zoo3's YAML files, read safely: its OrderedDict tag becomes a dict and a python tuple a tuple; any
    other python tag is refused (it would construct objects)."""
    import yaml  # a dependency of huggingface_hub

    class Loader(yaml.SafeLoader):
        pass

    def ordered(loader: Any, node: Any) -> dict[str, Any]:
        args = loader.construct_sequence(node, deep=True)  # [[(key, value), ...]]
        return dict(args[0]) if args else {}

    Loader.add_constructor("tag:yaml.org,2002:python/object/apply:collections.OrderedDict", ordered)
    Loader.add_constructor("tag:yaml.org,2002:python/tuple", lambda ld, n: tuple(ld.construct_sequence(n, deep=True)))
    try:
        return yaml.load(path.read_text(encoding="utf-8", errors="replace"), Loader=Loader)
    except yaml.YAMLError as e:
        raise TeacherError(f"cannot read {path.name} of hub teacher {path}: {_line(e)}") from None


def _mapping(snap: Snapshot, name: str) -> dict[str, Any]:
    path = snap.meta_file(name)
    value = _yaml(path) if path else None
    if value is not None and not isinstance(value, dict):
        raise TeacherError(f"{snap.ref.uri}: {name} is not a mapping")
    return value or {}


def _card_env_and_algo(snap: Snapshot) -> tuple[str | None, str | None]:
    """(env id, algorithm) from the model card's front matter: ``model-index[0]`` names the algorithm and its
    first result's dataset the env."""
    import yaml

    path = snap.meta_file("README.md")
    if path is None:
        return None, None
    try:
        card = _hub().metadata_load(path) or {}
        index = card.get("model-index") or [{}]
        dataset = ((index[0].get("results") or [{}])[0]).get("dataset") or {}
        env, algo = dataset.get("name") or dataset.get("type"), index[0].get("name")
    except (ValueError, AttributeError, IndexError, TypeError, yaml.YAMLError):  # no metadata, or odd metadata
        return None, None
    return (str(env) if env else None), (str(algo).lower() if algo else None)


def _wrappers(value: Any) -> list[tuple[str, dict[str, Any]]]:
    """rl-zoo3's ``env_wrapper``: a class path, a ``{path: kwargs}`` mapping, or a list of either."""
    out: list[tuple[str, dict[str, Any]]] = []
    for item in value if isinstance(value, list) else [value] if value else []:
        if isinstance(item, dict):
            out += [(str(k), dict(v or {})) for k, v in item.items()]
        else:
            out.append((str(item), {}))
    return out


def training_protocol(zoo_env_id: str, config: dict[str, Any], env_kwargs: dict[str, Any]) -> tuple[Any, list[str]]:
    """The Atari protocol a teacher of ``zoo_env_id`` trained under, as its rl-zoo3 files say (training options on),
    and notes on what the suite cannot match; ``(None, [])`` off Atari.

    ``<Game>NoFrameskip-v4`` is one emulator frame per step without sticky actions; ``ALE/<Game>-v5`` skips 4 frames
    with sticky actions 0.25 unless ``env_kwargs`` says otherwise. AtariWrapper (``env_wrapper``) multiplies the skip
    by its ``frame_skip`` and brings no-op starts, FIRE at reset, reward clipping and life loss (its kwargs can turn
    each off) and its own sticky actions (``action_repeat_probability``).
    """
    from rl_distill.envs import AtariProtocol, is_atari
    from rl_distill.teachers.sb3 import is_noframeskip, suite_env_id

    if not is_atari(suite_env_id(zoo_env_id)):
        return None, []
    v4, notes = is_noframeskip(zoo_env_id), []
    sticky = float(env_kwargs.get("repeat_action_probability", 0.0 if v4 else 0.25))
    env_skip = 1 if v4 else int(env_kwargs.get("frameskip", 4))
    atari = next((kw for name, kw in _wrappers(config.get("env_wrapper")) if name.endswith("AtariWrapper")), None)
    common = {
        "frame_cap": int(env_kwargs.get("max_num_frames_per_episode", 108_000)),
        "full_action_space": bool(env_kwargs.get("full_action_space", False)),
    }
    if atari is None:
        notes.append("config.yml has no AtariWrapper: the teacher saw the env's own frames")
        protocol = AtariProtocol(sticky_actions=sticky, frameskip=env_skip, noop_max=0, fire_reset=False, **common)
    else:
        if int(atari.get("screen_size", 84)) != 84:
            notes.append(f"AtariWrapper screen_size {atari['screen_size']}; the suite's frames are 84x84")
        protocol = AtariProtocol(
            sticky_actions=sticky or float(atari.get("action_repeat_probability", 0.0)),
            frameskip=env_skip * int(atari.get("frame_skip", 4)),
            noop_max=int(atari.get("noop_max", 30)),
            reward_clipping=bool(atari.get("clip_reward", True)),
            episodic_life=bool(atari.get("terminal_on_life_loss", True)),
            fire_reset=True,
            **common,
        )
    if config.get("frame_stack", 4) != 4:
        notes.append(f"frame_stack {config.get('frame_stack')}; the suite stacks 4 frames")
    return protocol, notes


def describe(snap: Snapshot) -> dict[str, Any]:
    """What a snapshot's files say, without loading weights: the env (rl-zoo3's id and the suite's), the
    algorithm, the wrappers, frame stack, env kwargs, the teacher's protocol and the zoo's own score. Refuses a
    teacher that normalised its observations (VecNormalize's statistics are pickled)."""
    from rl_distill.teachers.sb3 import suite_env_id

    uri = snap.ref.uri
    config, env_kwargs, args = (_mapping(snap, n) for n in ("config.yml", "env_kwargs.yml", "args.yml"))
    normalize = config.get("normalize")
    if snap.meta_file("vec_normalize.pkl") or (normalize and str(normalize).lower() not in ("false", "none")):
        raise TeacherError(
            f"{uri}: the teacher normalises its observations (VecNormalize); its statistics are pickled "
            "and rl-distill does not unpickle"
        )
    card_env, card_algo = _card_env_and_algo(snap)
    stem = re.fullmatch(r"([a-z0-9_]+)-(.+-v\d+)", snap.model.stem)  # "dqn-PongNoFrameskip-v4"
    zoo_env_id = args.get("env") or card_env or (stem.group(2) if stem else None)
    zoo_algo = args.get("algo") or card_algo or (stem.group(1) if stem else None)
    protocol, notes = training_protocol(zoo_env_id, config, env_kwargs) if zoo_env_id else (None, [])
    results = snap.meta_file("results.json")
    try:
        zoo_score = json.loads(results.read_text()) if results else None
    except ValueError:  # the zoo's own score is a record, not something the teacher needs
        zoo_score = None
    return {
        "uri": uri,
        "repo_id": snap.ref.repo_id,
        "revision": snap.ref.revision,
        "commit": snap.commit,
        "file": snap.model.relative_to(snap.folder).as_posix(),
        "path": str(snap.model),
        "zoo_env_id": zoo_env_id,
        "env_id": suite_env_id(zoo_env_id) if zoo_env_id else None,
        "zoo_algo": zoo_algo,
        "env_wrapper": [name for name, _ in _wrappers(config.get("env_wrapper"))],
        "frame_stack": config.get("frame_stack"),
        "env_kwargs": env_kwargs,
        "protocol": protocol.for_evaluation().to_dict() if protocol else None,
        "train_protocol": protocol.to_dict() if protocol else None,
        "zoo_score": zoo_score,
        "notes": notes,
    }


# --- loading --------------------------------------------------------------------------------------


def load_hub_teacher(uri: str, device: str | torch.device = "cpu", env_id: str | None = None) -> Teacher:
    """A hub teacher (``hf://ORG/REPO[@REVISION][/FILE]``), fetched or found in the cache and loaded without
    unpickling. ``env_id`` overrides the env its files name; its meta records ``protocol`` (its own evaluation
    protocol) and ``hub`` (:func:`describe`)."""
    from rl_distill.teachers.sb3 import load_sb3_zip

    snap = fetch(uri)
    record = describe(snap)
    teacher = load_sb3_zip(snap.model, device=device, env_id=env_id or record["env_id"])
    notes = list(teacher.meta.get("notes", [])) + record["notes"]
    algo = record["zoo_algo"]
    if algo in ("ppo", "a2c") and teacher.meta["algo"] in ("ppo", "a2c") and algo != teacher.meta["algo"]:
        # PPO and A2C share policy classes; the repo names the algorithm outright.
        notes.append(f"the repo says {algo}, the zip looked like {teacher.meta['algo']}; using {algo}")
        teacher.meta["algo"] = algo
    teacher.meta.update(id=uri, format="hf-hub", protocol=record["protocol"], hub=record, notes=notes)
    return teacher


def fetch_teacher(uri: str) -> Teacher:
    """``rl-distill teachers fetch``: the hub teacher loaded (so a file it cannot load is refused now, not at the
    first run), and checked against its env where the files name one the suite has."""
    from rl_distill.envs import env_spec

    teacher = load_hub_teacher(uri)
    if teacher.env_id:
        teacher.check_fits(env_spec(teacher.env_id))
    return teacher


def summary_line(teacher: Teacher) -> str:
    """One line on a fetched hub teacher: what it is, what it was trained on, where it is cached."""
    rec = teacher.meta["hub"]
    trained = rec["zoo_env_id"] or "an env its files do not name"
    p = rec["train_protocol"]
    if p:
        wrappers = ", ".join(w.rsplit(".", 1)[-1] for w in rec["env_wrapper"]) or "no wrapper"
        trained += (
            f": {wrappers}, frame stack {rec['frame_stack'] or 'none'}, sticky actions {p['sticky_actions']:g}, "
            f"frame skip {p['frameskip']}, {p['noop_max']} no-op starts"
        )
    env = teacher.env_id or "? (pass --env)"
    return (
        f"{rec['uri']}: {teacher.meta['algo']} teacher for {env} (trained on {trained}); "
        f"snapshot {rec['commit'][:12]} in {rec['path']}"
    )


def protocol_mismatch(teacher: Teacher, env_id: str) -> dict[str, Any] | None:
    """``{"teacher": its own protocol, "played": the suite's}`` where a run on ``env_id`` plays another protocol than
    the one the teacher records (``meta["protocol"]``, a hub teacher's from its files); None where they agree or the
    teacher records none."""
    from rl_distill.envs import family_of

    own = teacher.meta.get("protocol")
    family = family_of(env_id)
    played = family.protocol()
    if not own or played is None:
        return None
    try:
        own_d = family.protocol(**own).to_dict()
    except TypeError:  # a protocol of another family: nothing in common
        own_d = dict(own)
    played_d = played.to_dict()
    return None if own_d == played_d else {"teacher": own_d, "played": played_d}


def warn_protocol(teacher: Teacher, env_id: str) -> dict[str, Any] | None:
    """:func:`protocol_mismatch`, with one warning line on stderr where there is one (for a run to record both)."""
    mismatch = protocol_mismatch(teacher, env_id)
    if mismatch:
        own, played = mismatch["teacher"], mismatch["played"]
        diff = ", ".join(f"{k} {own[k]} (run: {played[k]})" for k in played if own.get(k) != played[k])
        print(
            f"warning: teacher {teacher.name} was trained with {diff}; the run plays {env_id} on the suite's protocol "
            "(both recorded)",
            file=sys.stderr,
        )
    return mismatch
