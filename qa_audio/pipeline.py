"""Score one recorded call end to end: audio → speech → timing → transcript → rules → score."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from scipy import fft as scipy_fft

from qa_audio.config import Config
from qa_audio.errors import QAError
from qa_audio.i18n import N_
from qa_audio.judge.analysis import Acoustics, Analysis
from qa_audio.judge.recheck import AudioChecker, Check, Examined, context_window, heard_exactly
from qa_audio.judge.recheck import apply as apply_checks
from qa_audio.judge.recheck import plan as recheck_plan
from qa_audio.judge.roles import decide_roles, decide_voices, swap_roles
from qa_audio.judge.rules import Finding, PhraseMatcher, evaluate, hold_cues
from qa_audio.judge.score import Score, score_findings, unscorable
from qa_audio.judge.timing import Timing, analyze_timing, speaking_rates
from qa_audio.judge.turns import split_at_replies
from qa_audio.signal.audio import Audio, load_audio
from qa_audio.signal.diarize import Diarization, diarize, pieces_by_voice
from qa_audio.signal.echo import echo_path, echo_spans
from qa_audio.signal.hangup import decide_hangup, disconnect_bursts, line_end
from qa_audio.signal.spans import Span, merge, subtract
from qa_audio.signal.tones import detect_music, detect_ringback
from qa_audio.signal.vad import (
    VoiceActivity,
    detect_speech,
    drop_background,
    frame_levels_dbfs,
    neural_speech,
    smooth,
    verify,
)
from qa_audio.speech.models import ModelInfo, load_model, resolve_model, stack_versions
from qa_audio.speech.normalize import TextNormalizer
from qa_audio.speech.transcribe import decode_options, transcribe_call
from qa_audio.speech.words import Utterance
from qa_audio.version import __version__


@dataclass(frozen=True)
class CallResult:
    """Everything qa-audio concluded about one call, with what produced it."""

    call_id: str
    audio: dict
    timing: Timing | None
    findings: tuple[Finding, ...]
    transcript: tuple[Utterance, ...]
    score: Score | None
    versions: dict
    settings: dict
    stage_s: dict = field(default_factory=dict, compare=False)
    error: str | None = None
    diarization: Diarization | None = None      # mono: the two voices' turns, named agent/customer

    @property
    def verdict(self) -> str:
        return "error" if self.error or self.score is None else self.score.verdict

    def to_dict(self) -> dict:
        """The result contract (see README); extra keys only extend it."""
        out = {
            "call_id": self.call_id,
            "score": None if self.score is None else self.score.score,
            "verdict": self.verdict,
            "audio": self.audio,
            "timing": self.timing.to_dict() if self.timing else {
                "answered": None, "rings": None, "ring_to_answer_s": None, "holds": [], "interruptions": [],
                "dead_air": []},
            "findings": [f.to_dict() for f in self.findings],
            "transcript": [u.to_dict() for u in self.transcript],
            "versions": self.versions,
            "settings": self.settings,
        }
        if self.diarization is not None:
            out["diarization"] = [t.to_dict() for t in self.diarization.turns]
        if self.score is not None:
            out["verdict_reason"] = self.score.reason
            out["sections"] = [s.to_dict() for s in self.score.sections]
        if self.error:
            out["error"] = self.error
        return out


def error_result(path: str | Path, message: str, *, config: Config | None = None) -> CallResult:
    path = Path(path)
    versions = {"qa_audio": __version__, "rulebook": config.rulebook if config else None, "model": None}
    return CallResult(path.stem, {"path": str(path), "duration_s": None, "sample_rate_hz": None, "channels": None},
                      None, (), (), None, versions, {}, error=message)


_STACK = stack_versions()
StageHook = Callable[[str, float], None]     # (stage name, seconds)


class Scorer:
    """Holds the rules (and, once needed, the loaded model); scores one call at a time.

    The model is loaded on first use, so rescoring stored transcripts never loads it.
    """

    def __init__(self, config: Config, *, model=None, model_info: ModelInfo | None = None,
                 on_stage: StageHook | None = None):
        self.config = config
        self.on_stage = on_stage          # told each stage's name and seconds as it ends (progress, debug output)
        self._model, self._model_info = model, model_info
        self._checker: AudioChecker | None = None
        self.normalizer = TextNormalizer()
        self.matcher = PhraseMatcher(config, self.normalizer)
        self.acknowledgements = phrase_set(config, config.backchannel_lexicon, self.normalizer)
        self.inventions = phrase_set(config, config.asr_inventions_lexicon, self.normalizer)

    @property
    def model(self):
        if self._model is None:
            self._model, self._model_info = load_model(self.config.model)
        return self._model

    @property
    def model_name(self) -> str:
        if self._model_info is None:
            self._model_info = resolve_model(self.config.model)
        return self._model_info.name

    def settings_record(self) -> dict:
        c = self.config
        return {"decode": decode_options(c.model), "compute_type": c.model.compute_type,
                "batch_size": c.model.batch_size,
                "beam_size_by_channel": {role: c.model.beam_for(role) for role in ("agent", "customer")},
                "window_s": c.model.window_s, "vad_mode": c.vad.mode, "tone_plan": c.tone_plan.name,
                "scoring": {"pass_score": c.scoring.pass_score, "redline_score": c.scoring.redline_score,
                            "sections": [s.to_dict() for s in c.scoring.sections]},
                "recheck": dataclasses.asdict(c.recheck), "diarization": dataclasses.asdict(c.diarization),
                "config": c.path}

    def versions(self, *, model: str | None = None) -> dict:
        return {"qa_audio": __version__, "rulebook": self.config.rulebook,
                "rulebook_name": self.config.rulebook_name, "model": model or self.model_name,
                "libraries": _STACK}

    def score_path(self, path: str | Path) -> CallResult:
        """Score one file; a bad input gives an error result, never an exception.

        A model that cannot load is not the file's fault: that raises :class:`ModelError`.
        """
        _ = self.model                   # a model that cannot load fails here, not as the file's error
        try:
            return self.score_audio(load_audio(path, max_duration_s=self.config.audio.max_duration_s))
        except QAError as exc:
            return error_result(path, str(exc), config=self.config)

    def analyze(self, audio: Audio) -> Analysis:
        """The expensive, rulebook-independent part: acoustics and transcript."""
        c = self.config
        stage: dict[str, float] = {}
        with self._stage("vad_tones", stage):
            sound = analyze_acoustics(audio, c)
        voices = None
        if "mixed" in sound.roles and c.diarization.enabled:     # mono: who speaks when, before Whisper listens
            with self._stage("diarize", stage):
                voices = diarize(audio.pcm(sound.roles["mixed"]), rate_hz=audio.rate_hz,
                                 voiced=sound.voiced["mixed"], settings=c.diarization)
        with self._stage("asr", stage):
            transcript = self._transcribe(audio, sound, voices=voices)
        roles = decide_roles(sound, transcript, matcher=self.matcher, settings=c.channels)
        if roles is not None and roles.agent != sound.roles["agent"]:     # the call says the other channel
            sound, transcript = swap_roles(sound, transcript)
            if c.model.beam_for("agent") != c.model.beam_for("customer"):   # each party at its own beam
                with self._stage("asr_redo", stage):
                    transcript = self._transcribe(audio, sound)
        diarization = None
        if voices is not None:
            roles, diarization, transcript = decide_voices(voices, transcript, matcher=self.matcher,
                                                           settings=c.channels, normalizer=self.normalizer,
                                                           min_separation=c.diarization.min_separation)
        audio_block = {"path": audio.path, "duration_s": round(audio.duration_s, 3),
                       "sample_rate_hz": audio.source_rate_hz, "channels": audio.source_channels,
                       "codec": audio.codec}
        if roles is not None:
            audio_block["roles"] = roles.to_dict()
        return Analysis(audio_block, sound, transcript, self.model_name, analysis_key(c), stage,
                        diarization=diarization)

    def _transcribe(self, audio: Audio, sound: Acoustics, *, voices: Diarization | None = None
                    ) -> tuple[Utterance, ...]:
        channels = {role: (audio.pcm(index), tuple(sound.regions[role])) for role, index in sound.roles.items()}
        if voices is not None and self.config.diarization.cut_asr and "mixed" in channels:   # one voice per window
            samples, regions = channels.pop("mixed")           # voices "0", "1": decide_voices names them
            channels.update({name: (samples, spans) for name, spans in pieces_by_voice(
                regions, voices, samples=samples, rate_hz=audio.rate_hz, settings=self.config.diarization).items()})
        return tuple(transcribe_call(self.model, channels, rate_hz=audio.rate_hz, settings=self.config.model,
                                     normalizer=self.normalizer))

    def score_audio(self, audio: Audio) -> CallResult:
        return self.judge(self.recheck(self.analyze(audio), audio))

    @property
    def checker(self) -> AudioChecker:
        if self._checker is None:
            self._checker = AudioChecker(self.model, normalizer=self.normalizer, settings=self.config.recheck,
                                         language=self.config.model.language)
        return self._checker

    def recheck(self, analysis: Analysis, audio: Audio) -> Analysis:
        """Re-examine, in the audio, the phrase decisions this rulebook would make on the transcript
        alone: required phrases not heard, fuzzy hits (see :mod:`qa_audio.judge.recheck`)."""
        if not self.config.recheck.enabled:
            return analysis
        stage = dict(analysis.stage_s)
        with self._stage("recheck", stage):
            checks = self._checks(analysis, audio)
        return dataclasses.replace(analysis, checks=tuple(checks), stage_s=stage)

    def _checks(self, analysis: Analysis, audio: Audio) -> list[Check]:
        findings = self.judge(analysis).findings
        expects = {f.rule.id: f.rule.expect for f in findings}
        planned = [(finding.rule.id, *item) for finding in findings
                   for item in recheck_plan(finding, self.matcher, self.config)]
        hotwords: dict[tuple, list[str]] = {}        # one biased decode per window, with every phrase it needs
        for _rule, kind, _lexicon, phrases, channel, start_s, end_s in planned:
            if kind == "missing":
                hotwords.setdefault((channel, start_s, end_s), []).extend(phrases)
        windows: dict[tuple, Examined] = {}
        checks = []
        for rule_id, kind, lexicon, phrases, channel, start_s, end_s in planned:
            index = analysis.acoustics.roles.get(channel)
            if index is None:
                continue
            key = (channel, start_s, end_s) if kind == "missing" else context_window(analysis.utterances, channel,
                                                                                         start_s, end_s)
            if key not in windows:
                windows[key] = self.checker.open(self.checker.window(audio.pcm(index), rate_hz=audio.rate_hz,
                                                                     start_s=key[1], end_s=key[2]))
            def found(text: str, phrase: str, lexicon: str = lexicon) -> bool:
                return heard_exactly(self.matcher, lexicon, text, phrase)

            if kind == "missing":
                phrase, how, margin, verdict, heard = windows[key].missing(phrases, found=found,
                                                                           hotwords=hotwords.get(key))
            else:
                phrase = phrases[0]
                def found_any(text: str, lexicon: str = lexicon) -> bool:
                    return heard_exactly(self.matcher, lexicon, text)

                how, margin, verdict, heard = windows[key].fuzzy(phrase, found=found, found_any=found_any,
                                                                 required=expects[rule_id] == "present")
            checks.append(Check(rule_id, lexicon, phrase, channel, start_s, end_s, kind, how, round(margin, 4),
                                verdict, heard))
        return checks

    @contextmanager
    def _stage(self, name: str, into: dict[str, float]) -> Iterator[None]:
        """Time one stage into ``into`` (as ``NAME_s``) and tell the stage hook."""
        started = time.perf_counter()
        try:
            yield
        finally:
            into[f"{name}_s"] = seconds = time.perf_counter() - started
            if self.on_stage is not None:
                self.on_stage(name, seconds)

    def judge(self, analysis: Analysis, *, facts: dict | None = None) -> CallResult:
        """Apply this scorer's rulebook to an analysis (fresh, or loaded from the store).

        ``facts`` is the call's metadata (e.g. ``hangup_side`` for CLS-3); rules that need a
        fact the call does not have are n/a.
        """
        c = self.config
        stage = dict(analysis.stage_s)
        with self._stage("rules", stage):
            utterances = list(analysis.utterances)
            # mono timing is the mixed channel's (overlap cannot be told apart): its words are the mix's
            heard = utterances if "mixed" not in analysis.acoustics.roles else [
                dataclasses.replace(u, channel="mixed") for u in utterances]
            timing = measure_timing(analysis.acoustics, config=c,
                                    hold_cues_s=hold_cues(c, utterances, matcher=self.matcher),
                                    rates_cps=speaking_rates(heard), utterances=heard,
                                    acknowledgements=self.acknowledgements, inventions=self.inventions)
            # the rules count turns: a bridged speech region is cut where the other party replied
            utterances = split_at_replies(utterances, min_gap_s=c.timing.utterance_gap_s,
                                          acknowledgements=self.acknowledgements, normalizer=self.normalizer)
            turns = utterances + unrecognised_turns(analysis.acoustics, utterances, analysis.diarization)
            findings = evaluate(c, turns, matcher=self.matcher, timing=timing, facts=facts)
            if c.recheck.enabled and analysis.checks:
                findings = apply_checks(findings, analysis.checks)
            silent = no_speech(analysis.acoustics, utterances)
            score = unscorable(silent, c.scoring) if silent else score_findings(findings, c.scoring)
            roles = analysis.audio.get("roles") or {}
            if roles.get("how") == "doubtful" and score.verdict in ("pass", "fail"):
                reason = VOICES_DOUBTFUL if roles.get("source") == "voices" else ROLES_DOUBTFUL
                score = dataclasses.replace(score, verdict="review", reason=reason)
        return CallResult(Path(analysis.audio["path"]).stem, dict(analysis.audio), timing, tuple(findings),
                          tuple(utterances), score, self.versions(model=analysis.model), self.settings_record(),
                          stage, diarization=analysis.diarization)


ROLES_DOUBTFUL = N_("which channel is the agent's is doubtful (the customer's side says more of what agents "
                    "say): a supervisor should listen")
VOICES_DOUBTFUL = N_("which voice of this mono recording is the agent's is doubtful (the two voices are hard to "
                     "tell apart, or the other voice says as much of what agents say): a supervisor should listen")


def no_speech(acoustics: Acoustics, utterances: list[Utterance]) -> str | None:
    """Why nobody can be judged on this call, or None when the agent (or, mono, anyone) spoke words."""
    party = "mixed" if "mixed" in acoustics.roles else "agent"
    anyone = any(acoustics.regions.get(role) for role in acoustics.roles)
    if not anyone:
        return N_("no speech found on any channel: a silent, tone-only, music-only or noise-only recording")
    if not acoustics.regions.get(party):
        return N_("the agent channel carries no speech (only the customer speaks): check the recording or "
                  "channel roles")
    if not any(u.text.strip() for u in utterances if u.channel == party or party == "mixed"):
        if party == "mixed":
            return N_("speech was detected in the recording but no words were recognised in it")
        return N_("speech was detected on the agent channel but no words were recognised in it")
    return None


def unrecognised_turns(acoustics: Acoustics, utterances: list[Utterance],
                       diarization: Diarization | None = None) -> list[Utterance]:
    """Speech regions Whisper returned no words for (a lone 嗯, a mumble), as empty turns.

    The rules still see that the party spoke there: a call whose agent ends on an
    unrecognised 嗯 has that as its last turn, not the line before it. In a diarized mono
    call the turn goes to the voice speaking in the region.
    """
    out = []
    for role, regions in acoustics.regions.items():
        said = [u for u in utterances if u.channel == role or role == "mixed"]
        for region in regions:
            if not any(u.start_s < region.end_s and region.start_s < u.end_s for u in said):
                who = diarization.speaker_at((region.start_s + region.end_s) / 2) if diarization else None
                out.append(Utterance(who or role, region.start_s, region.end_s, "", ()))
    return out


def analysis_key(config: Config) -> str:
    """A digest of every setting the acoustics and transcript depend on (not the rules).

    Two runs with the same key would produce the same analysis, so a stored one can be
    re-judged under a new rulebook without decoding the audio again.
    """
    c = config
    model = {k: v for k, v in asdict(c.model).items() if k != "cpu_threads"}
    timing = {k: v for k, v in asdict(c.timing).items() if k.startswith(("music_", "tone_"))}
    blob = json.dumps({"channels": asdict(c.channels), "model": model, "vad": asdict(c.vad),
                       "tones": asdict(c.tone_plan), "timing": timing, "diarization": asdict(c.diarization)},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def analyze_acoustics(audio: Audio, config: Config) -> Acoustics:
    """Speech regions per party with ringback, music and line echo found and excluded (no ASR).

    Stages, per channel unless said: ringback → webrtcvad with an energy gate → music (checked
    against Silero) → echo of the other channel (stereo) → regions joined and padded → each region
    verified by Silero.
    """
    # the FFTs of the tone and music detectors use this worker's thread cap (all cores when it is 0: auto)
    with scipy_fft.set_workers(config.model.cpu_threads or -1):
        return _analyze_acoustics(audio, config)


def _analyze_acoustics(audio: Audio, config: Config) -> Acoustics:
    c = config
    stereo = audio.channels == 2
    roles = {"agent": c.channels.agent, "customer": c.channels.customer} if stereo else {"mixed": 0}
    if stereo and max(roles.values()) >= audio.channels:
        raise QAError(f"{audio.path}: config channels {roles} do not fit a {audio.channels}-channel file")
    first: dict[str, VoiceActivity] = {}
    not_speech: dict[str, list[Span]] = {}
    busy: dict[str, list[Span]] = {}
    ring_bursts: list[Span] = []
    music: list[Span] = []
    for role, index in roles.items():
        samples = audio.pcm(index)
        ring = detect_ringback(samples, rate_hz=audio.rate_hz, plan=c.tone_plan, settings=c.timing)
        busy[role] = disconnect_bursts(samples, rate_hz=audio.rate_hz, plan=c.disconnect_plan, settings=c.timing)
        first[role] = detect_speech(samples, rate_hz=audio.rate_hz, settings=c.vad,
                                    exclude=list(ring.bursts) + busy[role])
        # quiet music on hold is still music: it need only stand above the line noise
        chan_music = detect_music(samples, rate_hz=audio.rate_hz, settings=c.timing,
                                  level_floor_dbfs=max(first[role].noise_floor_dbfs + c.timing.music_above_noise_db,
                                                       c.timing.music_level_min_dbfs),
                                  exclude=ring.bursts)
        if chan_music:
            # music never covers speech: what Silero hears as speech is taken back out of it
            spoken = neural_speech(samples, rate_hz=audio.rate_hz, within=chan_music)
            chan_music = [m for m in subtract(chan_music, spoken) if m.duration_s >= c.timing.music_min_s]
        not_speech[role] = list(ring.bursts) + busy[role] + chan_music
        ring_bursts += ring.bursts
        music += chan_music
    echoes = _echoes(roles, first, config) if stereo else {}
    regions: dict[str, list[Span]] = {}
    voiced: dict[str, list[Span]] = {}
    heard: dict[str, list[Span]] = {}
    levels: dict[str, float | None] = {}
    for role, index in roles.items():
        samples = audio.pcm(index)
        vad = first[role]
        if echoes.get(role):
            vad = dataclasses.replace(vad, raw=tuple(subtract(vad.raw, echoes[role])),
                                      loose=tuple(subtract(vad.loose, echoes[role])))
        if not_speech[role] or echoes.get(role):
            vad = smooth(vad, exclude=not_speech[role])
        if c.vad.background_below_db is not None:
            vad = drop_background(vad, below_db=c.vad.background_below_db)
        if c.vad.verify:
            vad = verify(vad, samples, rate_hz=audio.rate_hz, threshold=c.vad.verify_threshold,
                         min_heard_s=c.vad.verify_min_s)
        regions[role] = list(vad.regions)
        voiced[role] = subtract(vad.raw, not_speech[role])
        heard[role] = subtract(vad.loose, not_speech[role])
        levels[role] = _speech_level_dbfs(samples, audio.rate_hz, vad.regions)
    last_speech_s = max((r.end_s for spans in regions.values() for r in spans), default=0.0)
    ends = {role: line_end(audio.pcm(index), rate_hz=audio.rate_hz, after_s=last_speech_s, tone=busy[role])
            for role, index in roles.items()} if stereo else {}
    return Acoustics(audio.duration_s, roles, regions, tuple(_dedupe_bursts(ring_bursts)), tuple(merge(music)),
                     levels, voiced, ends, heard)


def _echoes(roles: dict, first: dict[str, VoiceActivity], config: Config) -> dict[str, list[Span]]:
    """Per party, the stretches where its channel carries only the other party's echo."""
    frame_s = config.vad.frame_ms / 1000.0
    level = {role: first[role].levels_dbfs for role in roles}      # webrtcvad's frames, measured once
    out: dict[str, list[Span]] = {}
    for near, far in (("agent", "customer"), ("customer", "agent")):
        active = np.zeros(len(level[far]), dtype=bool)
        for span in first[far].raw:
            active[int(span.start_s / frame_s): int(span.end_s / frame_s)] = True
        path = echo_path(level[near], level[far], active, frame_s=frame_s)
        if path is not None:
            out[near] = echo_spans(level[near], level[far], path, frame_s=frame_s,
                                   margin_db=config.vad.echo_margin_db)
    return out


def phrase_set(config: Config, name: str | None, normalizer: TextNormalizer) -> frozenset[str]:
    """A lexicon's plain phrases, normalised as transcripts are (empty when the rulebook names none)."""
    lexicon = config.lexicons.get(name or "")
    if lexicon is None:
        return frozenset()
    return frozenset(t for t in ("".join(ch for ch in normalizer.simplify(e.text) if ch.isalnum())
                                 for e in lexicon.entries if e.regex is None) if t)


def measure_timing(sound: Acoustics, *, config: Config, hold_cues_s=(), rates_cps: dict | None = None,
                   utterances: list[Utterance] | None = None, acknowledgements: frozenset[str] = frozenset(),
                   inventions: frozenset[str] = frozenset()) -> Timing:
    """The timing block from the acoustics (plus hold requests, speaking rates and, for telling
    backchannels from interruptions, the words of the transcript)."""
    words: dict[str, list] = {}
    for u in utterances or []:
        words.setdefault(u.channel, []).extend(u.words)
    return analyze_timing(
        duration_s=sound.duration_s, agent=sound.regions.get("agent"), customer=sound.regions.get("customer"),
        mono=sound.regions.get("mixed"), ring_bursts=list(sound.ring_bursts), music=list(sound.music),
        tone=list(sound.ring_bursts), hold_cues_s=list(hold_cues_s), levels_dbfs=sound.levels_dbfs,
        voiced=sound.voiced, heard=sound.heard, rates_cps=rates_cps, words=words, acknowledgements=acknowledgements,
        inventions=inventions, hangup=decide_hangup(sound.line_ends, duration_s=sound.duration_s),
        settings=config.timing)


def _speech_level_dbfs(samples: np.ndarray, rate_hz: int, regions) -> float | None:
    """The 75th percentile of 30-ms frame levels over the regions joined end to end (a minute at a time)."""
    if not regions:
        return None
    size = int(round(rate_hz * 0.03))
    levels, pending, held = [], [], 0
    for r in regions:
        pending.append(samples[int(r.start_s * rate_hz): int(r.end_s * rate_hz)])
        held += len(pending[-1])
        if held >= 60 * rate_hz or r is regions[-1]:
            joined = np.concatenate(pending)
            whole = len(joined) // size * size
            levels.append(frame_levels_dbfs(joined[:whole], rate_hz=rate_hz, frame_s=0.03))
            pending, held = [joined[whole:]], len(joined) - whole
    every = np.concatenate(levels)
    return float(np.percentile(every, 75)) if every.size else None


def _dedupe_bursts(bursts: list[Span]) -> list[Span]:
    """Ringback heard on both channels counts once."""
    out: list[Span] = []
    for burst in sorted(bursts):
        if out and burst.start_s < out[-1].end_s:
            continue
        out.append(burst)
    return out
