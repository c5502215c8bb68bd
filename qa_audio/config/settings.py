"""The pipeline's settings (audio, channels, model, VAD, tones, timing, matching, re-checking, scoring,
metadata, privacy, review): typed, with every number's range checked on load."""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from qa_audio.config.regex import compile_safe_regex
from qa_audio.config.source import _Section
from qa_audio.errors import ConfigError


# --------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class AudioSettings:
    max_duration_s: float = 7200.0      # longer recordings are refused from their header, before decoding


@dataclass(frozen=True)
class ChannelSettings:
    """Which channel of a stereo recording carries which party, and whether the call itself may say otherwise."""

    agent: int = 0
    customer: int = 1
    detect: bool = True                  # decide from the call's words which channel is the agent's
    # what only an agent says, and how much each counts (a lexicon said anywhere on a channel counts once)
    agent_evidence: tuple[tuple[str, float], ...] = (("organisation", 2.0), ("employee_id", 2.0),
                                                     ("offer_help", 2.0), ("anything_else", 1.0),
                                                     ("hold_request", 1.0), ("thanks_waiting", 1.0))
    swap_margin: float = 2.0             # the other channel's evidence must beat the configured one's by this


@dataclass(frozen=True)
class ModelSettings:
    path: str | None = None
    name: str = "whisper-base"
    compute_type: str = "int8"
    beam_size: int = 5
    language: str = "zh"
    cpu_threads: int = 0
    window_s: float = 30.0
    piece_gap_s: float = 0.4
    temperature_fallback: bool = True   # re-decode a doubtful segment at higher temperatures (faster-whisper default)
    best_of: int = 1                    # candidates sampled at each fallback temperature (faster-whisper: 5)
    retry_unrecognised_min_s: float = 0.8   # a region this long that gave no words is decoded again on its own
    batch_size: int = 8                 # decode windows per encoder call (1: one at a time, each with the fallback)
    customer_beam_size: int = 0         # the customer channel's beam (0: beam_size); the agent's words decide the rules

    def beam_for(self, channel: str) -> int:
        return self.customer_beam_size if channel == "customer" and self.customer_beam_size else self.beam_size


@dataclass(frozen=True)
class VadSettings:
    mode: int = 2
    frame_ms: int = 30
    min_speech_s: float = 0.2
    merge_gap_s: float = 0.8
    pad_s: float = 0.1
    energy_floor_dbfs: float = -50.0
    noise_margin_db: float = 10.0
    asr_margin_db: float = 6.0          # a lower gate for what is sent to Whisper (Silero verifies it)
    verify: bool = True                 # keep only regions where Silero VAD hears speech
    verify_threshold: float = 0.35
    verify_min_s: float = 0.1
    background_below_db: float | None = 20.0   # regions this far under the party's own level are background
    echo_margin_db: float = 6.0         # near-channel frames this close to the far party's predicted echo are echo


@dataclass(frozen=True)
class TonePlan:
    name: str
    frequencies_hz: tuple[float, ...]
    on_s: float
    off_s: float


@dataclass(frozen=True)
class TimingSettings:
    dead_air_min_s: float = 5.0
    hold_min_s: float = 8.0
    backchannel_max_s: float = 1.0
    turn_gap_s: float = 1.5
    interruption_min_prior_s: float = 0.5
    interruption_floor_s: float = 0.2
    utterance_gap_s: float = 0.3
    music_min_s: float = 3.0
    music_level_min_dbfs: float = -55.0
    music_above_noise_db: float = 2.0
    music_sustain_min: float = 0.13
    music_sustain_low: float = 0.07
    music_steady_sustain_min: float = 0.04
    music_steady_low_frames_max: float = 0.02
    music_flatness_max: float = 0.3
    tone_ratio_min: float = 0.6
    tone_level_min_dbfs: float = -45.0


@dataclass(frozen=True)
class MatchSettings:
    min_similarity: float = 0.8
    exact_below_syllables: int = 3
    word_aligned_below_syllables: int = 3   # shorter phrases must start and end on a word (jieba) boundary
    low_confidence: float = 0.5


@dataclass(frozen=True)
class RecheckSettings:
    enabled: bool = True                 # re-check missing phrases and fuzzy hits against the audio
    hotword_margin: float = -0.3         # a hotword decode that shows the phrase is accepted above this margin
    substitution_margin: float = -0.1    # the phrase put in the decode's place is accepted above this...
    undecided_band: float = 0.2          # ...and makes the verdict review this far below it
    fuzzy_margin: float = -1.0           # a fuzzy hit stands only if a hotword decode shows it, above this
    max_window_s: float = 30.0
    max_hotword_chars: int = 120
    max_phrases: int = 12                # phrases tried per missing lexicon (its first entries)
    hotword_decode: bool = True          # false: substitution only (align passes, no second decode): cheaper


@dataclass(frozen=True)
class DiarizationSettings:
    """Two voices in a mono recording (see :mod:`qa_audio.signal.diarize`); tuned on labelled conversations by
    ``scripts/eval_diarization.py``."""

    enabled: bool = True                 # false: a mono call keeps one "mixed" party (timing rules only)
    bridge_s: float = 0.25               # voiced frames closer than this form one segment
    window_s: float = 0.8                # speaker-encoder window
    hop_s: float = 0.2                   # window step
    min_window_s: float = 0.3            # a shorter segment is not embedded (it takes its neighbours' speaker)
    scale: float = 20.0                  # window score → frame log-likelihood ratio
    switch_penalty: float = 2.0          # cost of a change of speaker inside a segment
    iterations: int = 3
    center: bool = True                  # cluster the windows' vectors after removing the call's mean vector
    components: int = 10                 # ... projected on this many principal directions (0: all 256)
    refine: bool = False                 # move turn boundaries by per-speaker MFCC GMMs
    refine_components: int = 4
    refine_margin_s: float = 0.3         # GMMs learn from frames this far inside a turn
    refine_smooth_s: float = 0.3
    refine_penalty: float = 3.0
    min_separation: float = 0.1          # two voices closer than this (1 - cosine) are doubtful: verdict review
    cut_asr: bool = False                # Whisper decodes one voice at a time: regions cut where the voice changes
    cut_search_s: float = 0.3            # ... at the quietest 10 ms this close to the change
    cut_min_piece_s: float = 0.4         # ... never leaving a piece shorter than this


@dataclass(frozen=True)
class ScoreSection:
    """A section of the scorecard (开场, 等待 …): the rules in it can cost the call at most ``weight`` points
    together (扣完为止), and the call gets a 0-100 score for it."""

    id: str
    title: str                 # as the handbooks word it (Chinese)
    title_en: str
    weight: float

    def to_dict(self) -> dict:
        return {"id": self.id, "title": self.title, "title_en": self.title_en, "weight": self.weight}


@dataclass(frozen=True)
class ScoreSettings:
    pass_score: float = 85.0
    redline_score: float = 0.0
    sections: tuple[ScoreSection, ...] = ()

    def section(self, section_id: str | None) -> ScoreSection | None:
        return next((s for s in self.sections if s.id == section_id), None)


METADATA_FIELDS = ("agent_id", "agent_name", "team", "call_time", "direction", "hangup_side", "client")


@dataclass(frozen=True)
class MetadataSettings:
    """Where each call's agent, team and time come from besides a sidecar CSV."""

    filename_pattern: str | None = None              # regex with named groups, matched against the file name
    required: tuple[str, ...] = ("agent_id", "call_time")   # reported as missing when not found


@dataclass(frozen=True)
class PrivacySettings:
    """How personal numbers (phone, ID card, bank card) in transcripts are masked."""

    mask_in: str = "display"              # display: everything shown or exported; store: also before storing
    keep_last_digits: int = 4
    mask_digit_runs_min: int | None = 12  # any run of this many digits is masked too; null: only the three kinds


@dataclass(frozen=True)
class ReviewSettings:
    """The supervisors' review page (``qa-audio serve``): spot-check queue and sessions."""

    sample_passing_percent: float = 10.0  # share of passing calls drawn for calibration listening
    sample_seed: str = "calibration"      # the draw is a hash of (seed, audio): stable across restarts
    page_size: int = 50
    session_hours: float = 8.0            # a login lasts this long
    secure_cookies: bool = False          # true behind HTTPS: the login cookie is never sent over plain HTTP
    appeal_days: float = 7.0              # an agent may appeal a finding this many days after the call's scoring
    language: str = "zh-CN"               # the pages' and exports' language until a reader picks another
    threads: int = 8                      # the production server's worker threads (``serve --threads``)


# --------------------------------------------------------------------------- loaders
# the range of every bounded setting (inclusive); other numbers must be ≥ 0, levels in dBFS ≤ 0
RANGES: dict[str, tuple[float, float]] = {
    "AudioSettings.max_duration_s": (1, 86400),
    "ModelSettings.beam_size": (1, 20), "ModelSettings.best_of": (1, 20), "ModelSettings.cpu_threads": (0, 256),
    "ModelSettings.window_s": (1, 30), "ModelSettings.piece_gap_s": (0, 5),
    "ModelSettings.retry_unrecognised_min_s": (0, 30),
    "ModelSettings.batch_size": (1, 64), "ModelSettings.customer_beam_size": (0, 20),
    "VadSettings.min_speech_s": (0, 10), "VadSettings.merge_gap_s": (0, 10), "VadSettings.pad_s": (0, 5),
    "VadSettings.energy_floor_dbfs": (-120, 0), "VadSettings.noise_margin_db": (0, 60),
    "VadSettings.asr_margin_db": (0, 60), "VadSettings.verify_threshold": (0, 1), "VadSettings.verify_min_s": (0, 10),
    "VadSettings.background_below_db": (0, 120), "VadSettings.echo_margin_db": (0, 60),
    "TimingSettings.dead_air_min_s": (0.5, 3600), "TimingSettings.hold_min_s": (0.5, 3600),
    "TimingSettings.backchannel_max_s": (0, 10), "TimingSettings.turn_gap_s": (0, 30),
    "TimingSettings.interruption_min_prior_s": (0, 30), "TimingSettings.interruption_floor_s": (0, 10),
    "TimingSettings.utterance_gap_s": (0.01, 10), "TimingSettings.music_min_s": (0.5, 600),
    "TimingSettings.music_level_min_dbfs": (-120, 0), "TimingSettings.music_above_noise_db": (0, 60),
    "TimingSettings.music_sustain_min": (0, 1), "TimingSettings.music_sustain_low": (0, 1),
    "TimingSettings.music_steady_sustain_min": (0, 1), "TimingSettings.music_steady_low_frames_max": (0, 1),
    "TimingSettings.music_flatness_max": (0, 1), "TimingSettings.tone_ratio_min": (0, 1),
    "TimingSettings.tone_level_min_dbfs": (-120, 0),
    "MatchSettings.min_similarity": (0.5, 1), "MatchSettings.exact_below_syllables": (0, 20),
    "MatchSettings.word_aligned_below_syllables": (0, 20), "MatchSettings.low_confidence": (0, 1),
    "ScoreSettings.pass_score": (0, 100), "ScoreSettings.redline_score": (0, 100),
    "RecheckSettings.hotword_margin": (-5, 1), "RecheckSettings.substitution_margin": (-5, 1),
    "RecheckSettings.undecided_band": (0, 5), "RecheckSettings.fuzzy_margin": (-5, 1),
    "RecheckSettings.max_window_s": (1, 30), "RecheckSettings.max_hotword_chars": (1, 400),
    "RecheckSettings.max_phrases": (1, 100),
    "DiarizationSettings.bridge_s": (0, 5), "DiarizationSettings.window_s": (0.2, 5),
    "DiarizationSettings.hop_s": (0.01, 5), "DiarizationSettings.min_window_s": (0.05, 5),
    "DiarizationSettings.scale": (0.01, 1000), "DiarizationSettings.switch_penalty": (0, 1000),
    "DiarizationSettings.iterations": (1, 20), "DiarizationSettings.refine_components": (1, 64),
    "DiarizationSettings.refine_margin_s": (0, 5), "DiarizationSettings.refine_smooth_s": (0.01, 5),
    "DiarizationSettings.refine_penalty": (0, 1000), "DiarizationSettings.min_separation": (0, 2),
}


def _dataclass_from(section: _Section, cls, **overrides):
    values = {}
    for name, fdef in cls.__dataclass_fields__.items():
        if name in overrides:
            continue
        default = fdef.default
        kind: Any = type(default) if default is not None else (str, type(None))
        if kind is float:
            kind = (float,)
        if name.endswith(("_s", "_db", "_dbfs")) and default is None:
            kind = (float, type(None))
        numeric = kind in ((float,), int, (float, type(None)))
        low, high = RANGES.get(f"{cls.__name__}.{name}", (None, 0) if name.endswith("_dbfs") else (0, None))
        values[name] = section.get(name, kind, default, min_value=low if numeric else None,
                                   max_value=high if numeric else None)
    section.check_unknown()
    return cls(**values, **overrides)


def _tone_plan(tones: _Section, plans: _Section, key: str, plan_name: str) -> TonePlan:
    """The tone plan ``tones.KEY`` names, validated."""
    if not plans.has(plan_name):
        raise tones.fail(key, f"no tone plan named {plan_name!r} under tones.plans")
    plan_section = plans.section(plan_name)
    freqs_node = plan_section.raw("frequencies_hz")
    if freqs_node is None or not isinstance(freqs_node.value, list) or not freqs_node.value or not all(
            isinstance(f.value, (int, float)) and not isinstance(f.value, bool) and 50 <= f.value <= 3400
            for f in freqs_node.value):
        raise plan_section.fail("frequencies_hz", "expected a list of frequencies within the telephone band "
                                                  "(50-3400 Hz)")
    plan = TonePlan(
        name=plan_name,
        frequencies_hz=tuple(float(f.value) for f in freqs_node.value),
        on_s=plan_section.get("on_s", float, min_value=0.05, max_value=60),
        off_s=plan_section.get("off_s", float, min_value=0.0, max_value=60),
    )
    plan_section.check_unknown()
    return plan


def _load_metadata(section: _Section) -> MetadataSettings:
    pattern = section.get("filename_pattern", (str, type(None)), None)
    if pattern is not None:
        node = section.raw("filename_pattern")
        groups = set(compile_safe_regex(pattern, section.path, line=node.line if node else None,
                                        field=section._name("filename_pattern")).groupindex)
        unknown = groups - set(METADATA_FIELDS)
        if not groups or unknown:
            raise section.fail("filename_pattern", "named groups must be among " + ", ".join(METADATA_FIELDS)
                               + (f"; unknown: {', '.join(sorted(unknown))}" if unknown else "; found none"))
    required = section.str_list("required") if section.has("required") else MetadataSettings.required
    bad = [f for f in required if f not in METADATA_FIELDS]
    if bad:
        raise section.fail("required", f"unknown field {bad[0]!r}; expected some of {', '.join(METADATA_FIELDS)}")
    section.check_unknown()
    return MetadataSettings(pattern, tuple(required))


@dataclass(frozen=True)
class Settings:
    """Every setting of a config file (all but its rulebook)."""

    audio: AudioSettings
    channels: ChannelSettings
    model: ModelSettings
    vad: VadSettings
    tone_plan: TonePlan
    disconnect_plan: TonePlan | None
    timing: TimingSettings
    matching: MatchSettings
    scoring: ScoreSettings
    recheck: RecheckSettings
    diarization: DiarizationSettings
    metadata: MetadataSettings
    privacy: PrivacySettings
    review: ReviewSettings


def load_settings(top: _Section, *, profile: str | None = None) -> Settings:
    """The settings sections of a config (``top``: its root), validated field by field."""
    channels = _load_channels(top.section("channels"))
    if channels.agent == channels.customer:
        raise top.fail("channels", "agent and customer must be different channels")
    vad = _dataclass_from(top.section("vad"), VadSettings)
    if vad.mode not in (0, 1, 2, 3):
        raise top.section("vad").fail("mode", "expected 0, 1, 2 or 3")
    if vad.frame_ms not in (10, 20, 30):
        raise top.section("vad").fail("frame_ms", "expected 10, 20 or 30")
    tone_plan, disconnect_plan = _load_tones(top.section("tones", required=True))
    return Settings(
        audio=_dataclass_from(top.section("audio"), AudioSettings), channels=channels,
        model=_load_model(top, profile), vad=vad, tone_plan=tone_plan, disconnect_plan=disconnect_plan,
        timing=_dataclass_from(top.section("timing"), TimingSettings),
        matching=_dataclass_from(top.section("matching"), MatchSettings),
        scoring=_load_scoring(top.section("scoring")),
        recheck=_dataclass_from(top.section("recheck"), RecheckSettings),
        diarization=_dataclass_from(top.section("diarization"), DiarizationSettings),
        metadata=_load_metadata(top.section("metadata")), privacy=_load_privacy(top.section("privacy")),
        review=_load_review(top.section("review")),
    )


def _load_model(top: _Section, profile: str | None) -> ModelSettings:
    model = _dataclass_from(top.section("model"), ModelSettings)
    profiles = top.section("profiles")
    for profile_name in profiles.node.value:
        overrides = _dataclass_from(profiles.section(profile_name), ModelSettings)   # validates every profile
        if profile_name == profile:
            given = profiles.section(profile_name).node.value
            model = replace(model, **{k: getattr(overrides, k) for k in given})
    if profile is not None and not profiles.has(profile):
        known = ", ".join(profiles.node.value) or "none"
        raise ConfigError(top.path, f"no profile named {profile!r} (known: {known})", field="profiles")
    return model


def _load_tones(tones: _Section) -> tuple[TonePlan, TonePlan | None]:
    plans = tones.section("plans", required=True)
    tone_plan = _tone_plan(tones, plans, "plan", tones.get("plan", str))
    disconnect_name = tones.get("disconnect", (str, type(None)), None)
    disconnect_plan = _tone_plan(tones, plans, "disconnect", disconnect_name) if disconnect_name else None
    for other in plans.node.value:
        plans.used.add(other)
    tones.check_unknown()
    return tone_plan, disconnect_plan


def _load_privacy(section: _Section) -> PrivacySettings:
    privacy = PrivacySettings(
        mask_in=section.get("mask_in", str, "display", choices=("display", "store")),
        keep_last_digits=section.get("keep_last_digits", int, 4, min_value=0, max_value=8),
        mask_digit_runs_min=section.get("mask_digit_runs_min", (int, type(None)), 12, min_value=6),
    )
    section.check_unknown()
    return privacy


def _load_channels(section: _Section) -> ChannelSettings:
    """``channels:``: the configured roles, and the evidence that may swap them (lexicon → weight)."""
    evidence = ChannelSettings.agent_evidence
    if section.has("agent_evidence"):
        part = section.section("agent_evidence")
        if not isinstance(part.node.value, dict) or not part.node.value:
            raise section.fail("agent_evidence", "expected a mapping of lexicon name → weight")
        evidence = tuple((str(name), float(part.get(str(name), (int, float), min_value=0, max_value=100)))
                         for name in part.node.value)
        part.check_unknown()
    return _dataclass_from(section, ChannelSettings, agent_evidence=evidence)


def _load_scoring(section: _Section) -> ScoreSettings:
    """``scoring:``: the pass mark, the red-line score and the scorecard's sections (id → title, weight)."""
    sections = []
    if section.has("sections"):
        part = section.section("sections")
        if not isinstance(part.node.value, dict) or not part.node.value:
            raise section.fail("sections", "expected a mapping of section id → {title, title_en, weight}")
        for section_id in part.node.value:
            if not re.fullmatch(r"[a-z][a-z0-9_]{0,31}", str(section_id)):
                raise part.fail(str(section_id), "a section id is lower-case letters, digits and _ (e.g. opening)")
            one = part.section(str(section_id))
            sections.append(ScoreSection(str(section_id), one.get("title", str), one.get("title_en", str, ""),
                                         float(one.get("weight", (int, float), min_value=0, max_value=100))))
            one.check_unknown()
    return _dataclass_from(section, ScoreSettings, sections=tuple(sections))


def _load_review(section: _Section) -> ReviewSettings:
    review = ReviewSettings(
        sample_passing_percent=float(section.get("sample_passing_percent", (int, float), 10.0, min_value=0,
                                                 max_value=100)),
        sample_seed=str(section.get("sample_seed", (str, int), "calibration")),
        page_size=section.get("page_size", int, 50, min_value=1, max_value=500),
        session_hours=float(section.get("session_hours", (int, float), 8.0, min_value=0.1, max_value=24 * 7)),
        secure_cookies=section.get("secure_cookies", bool, False),
        appeal_days=float(section.get("appeal_days", (int, float), 7.0, min_value=0, max_value=365)),
        language=section.get("language", str, "zh-CN", choices=("zh-CN", "en")),
        threads=section.get("threads", int, 8, min_value=1, max_value=256),
    )
    section.check_unknown()
    return review
