"""The cleanup preset on noisy concert footage: synthetic duets with hum, hiss or crowd noise added.

The set: ``pixelsep synth duet --split test --condition classic --seconds 10`` (made when missing;
melodies and seeds never trained on, no recording chain, so each performer's stem is clean). Each
duet gets one noise at a time, scaled to a known signal-to-noise ratio against the duet's mix (mean
power over the clip), and the noisy mix is remuxed as the clip's sound (32-bit float PCM in a
.mov, so the noise in the clip is exactly the noise added):

- hum: mains hum, 50 Hz on even duets and 60 Hz on odd ones (a drift of up to 0.1 % drawn per
  duet), harmonics 1-8 with amplitudes falling as k^-0.7 and random phases, the same in both
  channels; SNR 10 dB;
- hiss: pink noise (power falling 3 dB per octave from 20 Hz), independent per channel; SNR 15 dB;
- crowd: murmur (twelve talkers: noise band-passed to 250-2500 Hz under a slow random envelope of
  syllables, 2-6 Hz, each panned somewhere) and two stretches of applause (1.5-3 s of claps, 25
  a second at random: 8 ms bursts band-passed to 0.8-5 kHz with a 3 ms decay, panned at random),
  murmur and applause at equal power; SNR 10 dB.

One performer of each duet (the first and the second by turns; ``--both``: each) is clicked on its
own, once, on its picture at mid-clip (the sidecar's point, as ``pixelsep eval`` clicks), with the
shipped model. Without the preset its stem is the separated
stem; with it (``cleanup_preset``: hum removal, noise reduction and loudness to -23 LUFS on the
clicked performer, hum removal and noise reduction on the residual, the residual 12 dB down) it is
the processed stem. Reported per noise, as medians with [first, third quartile] over performers:

- SDR (BSS Eval, mir_eval) and SI-SDR of the clicked performer's stem against its true, clean stem
  (channel means, the clip's rate): on the clean clip, on the noisy clip, and on the noisy clip with
  the preset (both scale-invariant, so the loudness gain does not count);
- the noise in the remix with the preset relative to the noise in the clip (the remix without a
  preset is the clip itself), in dB, and the change of the remix's signal-to-noise ratio; beside
  them the same for the residual turned down 12 dB without the processors. The noise in a render is
  the render of the noisy clip minus the same render of its noise-free part with every decision
  frozen: the separation's masks are the noisy clip's (masks are linear in the audio they are
  applied to) and the processors are built on the noisy stems (the same hum notches, noise profile
  and loudness gain), so the difference is what the noise leaves in the output, including what it
  changes in the noise gate's decisions;
- the same noise and SNR change in the clicked performer's stem (processed against separated).

    .venv/bin/python benchmarks/cleanup.py --data data/cleanup-duets --out benchmarks/results/cleanup

writes OUT.json (settings, every row, the summaries) and OUT.md (the tables).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

NOISES = {"hum": 10.0, "hiss": 15.0, "crowd": 10.0}  # noise -> SNR in dB against the duet's mix
REST_DB = -12.0
TARGET_LUFS = -23.0


# ---------------------------------------------------------------------------------------------------
# Noises: float64 (channels, n), unscaled


def hum_noise(n: int, rate: int, channels: int, rng: np.random.Generator, mains_hz: float) -> np.ndarray:
    t = np.arange(n) / rate
    f0 = mains_hz * (1 + rng.uniform(-0.001, 0.001))
    mono = sum(k**-0.7 * np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 2 * np.pi)) for k in range(1, 9))
    return np.tile(mono, (channels, 1))


def pink_noise(n: int, rate: int, channels: int, rng: np.random.Generator) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal((channels, n)), axis=-1)
    frequencies = np.fft.rfftfreq(n, 1 / rate)
    shape = np.where(frequencies >= 20.0, 1 / np.sqrt(np.maximum(frequencies, 20.0)), 0.0)
    return np.fft.irfft(spectrum * shape, n, axis=-1)


def crowd_noise(n: int, rate: int, channels: int, rng: np.random.Generator) -> np.ndarray:
    from scipy.signal import butter, sosfilt

    def pan(mono: np.ndarray) -> np.ndarray:
        left = rng.uniform(0.2, 0.8)
        gains = [left, 1 - left] if channels == 2 else [1.0] * channels
        return np.stack([g * mono for g in gains])

    voice_band = butter(2, [250, 2500], btype="bandpass", fs=rate, output="sos")
    syllables = butter(2, [2, 6], btype="bandpass", fs=rate, output="sos")
    murmur = np.zeros((channels, n))
    for _ in range(12):
        envelope = np.abs(sosfilt(syllables, rng.standard_normal(n)))
        murmur += pan(sosfilt(voice_band, rng.standard_normal(n)) * envelope)
    clap_band = butter(2, [800, 5000], btype="bandpass", fs=rate, output="sos")
    burst = int(0.008 * rate)
    decay = np.exp(-np.arange(burst) / (0.003 * rate))
    applause = np.zeros((channels, n))
    for _ in range(2):
        length = rng.uniform(1.5, 3.0)
        start = rng.uniform(0, max(0.0, n / rate - length))
        for at in start + np.sort(rng.uniform(0, length, int(25 * length))):
            i = int(at * rate)
            clap = sosfilt(clap_band, rng.standard_normal(burst)) * decay * rng.uniform(0.5, 1.0)
            applause[:, i : i + burst] += pan(clap)[:, : n - i]

    def unit(x: np.ndarray) -> np.ndarray:
        return x / np.sqrt(np.mean(x**2) + 1e-20)

    return unit(murmur) + unit(applause)


def make_noise(kind: str, n: int, rate: int, channels: int, seed: int, index: int) -> np.ndarray:
    rng = np.random.default_rng([seed, index, list(NOISES).index(kind)])
    if kind == "hum":
        return hum_noise(n, rate, channels, rng, 50.0 if index % 2 == 0 else 60.0)
    if kind == "hiss":
        return pink_noise(n, rate, channels, rng)
    return crowd_noise(n, rate, channels, rng)


def scaled(noise: np.ndarray, mix: np.ndarray, snr_db: float) -> np.ndarray:
    """``noise`` scaled so that mean power of ``mix`` / mean power of noise is ``snr_db``."""
    gain = np.sqrt(np.mean(mix.astype(np.float64) ** 2) / (np.mean(noise**2) * 10 ** (snr_db / 10)))
    return (gain * noise).astype(np.float32)


# ---------------------------------------------------------------------------------------------------
# Rendering


def with_audio(analysis, audio: np.ndarray):
    """The analysis with other original-rate audio (channels, n) under the same masks."""
    twin = dataclasses.replace(analysis)
    twin.arrays.update(analysis.arrays)
    twin.arrays["audio"] = np.ascontiguousarray(audio.T)
    return twin


def render(recipe, chain_separation, block_separation) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(the clicked source's processed stem, the remix, what its chain decided) of ``recipe``: chains built
    on ``chain_separation`` (their decisions are its), blocks and audio from ``block_separation``.

    The decisions: the Loudness gain (dB), the mains frequency HumRemoval found (None: none) and the
    number of CleanupWarnings."""
    from pixelsep_plugin.effects.cleanup import CleanupWarning
    from pixelsep_plugin.recipe.render import Remixer, chains_for

    analysis = block_separation.analysis
    audio = analysis.audio
    name = recipe.sources[0].name
    remix, processed = [], []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CleanupWarning)
        chains = chains_for(chain_separation, recipe)
        remixer = Remixer(recipe, analysis.sample_rate, audio.shape[0], None, chains)
        for block in block_separation.iter_blocks(residual=True):
            n = block.stems.shape[-1]
            remix.append(remixer.mix(audio[:, block.sample_start : block.sample_start + n], block))
            processed.append(remixer.processed[name])
        remix.append(remixer.finish())
        processed.append(remixer.processed[name])
    stages = {stage.plugin: stage for stage in chains[name].stages}
    estimate = stages["pixelsep.HumRemoval"].shared.get("estimate")
    decided = {
        "gain_db": stages["pixelsep.Loudness"].gain_db(),
        "mains_hz": None if estimate is None else estimate.mains_hz,
        "warnings": sum(issubclass(w.category, CleanupWarning) for w in caught),
    }
    return np.concatenate(processed, axis=1), np.concatenate(remix, axis=1), decided


def power(x: np.ndarray) -> float:
    return float(np.mean(np.square(x, dtype=np.float64)))


def db(ratio: float) -> float:
    return float(10 * np.log10(max(ratio, 1e-30)))


def loudness(stem: np.ndarray, rate: int) -> float:
    """Integrated loudness (LUFS) of a stem (channels, n) by pyloudnorm's meter."""
    import pyloudnorm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(pyloudnorm.Meter(rate).integrated_loudness(stem.T.astype(np.float64)))


def scores(reference: np.ndarray, estimate: np.ndarray) -> tuple[float, float]:
    """(SDR, SI-SDR) in dB of a stem (channels, n) against its reference, on channel means."""
    from pixelsep_plugin.evaluate.run import bss_eval, si_sdr

    ref, est = reference.mean(axis=0).astype(np.float64), estimate.mean(axis=0).astype(np.float64)
    if not np.any(est):
        return -np.inf, -np.inf
    return float(bss_eval(ref[None], est[None])[0][0]), si_sdr(ref, est)


# ---------------------------------------------------------------------------------------------------
# One duet


def run_duet(separator, sidecar_path: Path, index: int, work: Path, seed: int, both: bool) -> list[dict[str, Any]]:
    """Rows of one duet: its clicked performer (the first or the second, by turns; ``both``: each) under each noise."""
    from pixelsep_plugin import media
    from pixelsep_plugin import recipe as rcp
    from pixelsep_plugin.effects.cleanup import cleanup_preset
    from pixelsep_plugin.evaluate.run import click_point
    from pixelsep_plugin.runtime.query import Source

    sidecar = json.loads(sidecar_path.read_text())
    folder = sidecar_path.parent
    clip = folder / sidecar["video"]
    chosen = range(len(sidecar["performers"])) if both else [(index // 2) % len(sidecar["performers"])]
    performers = [sidecar["performers"][i] for i in chosen]
    clean_analysis, _ = separator.analyze(clip)
    rate, channels, layout = clean_analysis.sample_rate, clean_analysis.audio.shape[0], clean_analysis.channel_layout
    clean = np.array(clean_analysis.audio)
    references = [media.read_audio(folder / p["stem"])[0] for p in performers]
    time_seconds = float(sidecar["duration_seconds"]) / 2
    clicks = [Source(p["name"], (click_point(p, sidecar["fps"], time_seconds),)) for p in performers]

    def trimmed(stem: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = min(stem.shape[-1], reference.shape[-1])
        return reference[:, :n], stem[:, :n]

    clean_scores = []
    for source, reference in zip(clicks, references, strict=True):
        stem = separator.separate(clean_analysis, [source]).render(residual=False)[0][0]
        clean_scores.append(scores(*trimmed(stem, reference)))

    rows = []
    for kind, snr_db in NOISES.items():
        noise = scaled(make_noise(kind, clean.shape[1], rate, channels, seed, index), clean, snr_db)
        noisy_clip = work / f"{sidecar['name']}.{kind}.mov"
        media.mux_new_audio(clip, clean + noise, rate, layout, noisy_clip, codec="pcm_f32le")
        analysis, _ = separator.analyze(noisy_clip)
        noisy = np.asarray(analysis.audio)
        part = with_audio(analysis, noisy - noise)  # the noise-free part of the noisy clip, under its masks
        for p_index, (source, reference) in enumerate(zip(clicks, references, strict=True)):
            recipe = rcp.new_recipe(rcp.clip_ref(noisy_clip), separator.package.model_id,
                                    separator.package.checksum, [source])  # fmt: skip
            cleaned = cleanup_preset(recipe, target_lufs=TARGET_LUFS, rest_db=REST_DB)
            separation = separator.separate(analysis, [source])
            part_separation = separator.separate(part, [source])
            stem = separation.render(residual=False)[0][0]
            stem_part = part_separation.render(residual=False)[0][0]
            fx, remix, decided = render(cleaned, separation, separation)
            fx_part, remix_part, _ = render(cleaned, separation, part_separation)
            stem_noise = stem - stem_part  # the noise through the clicked performer's mask
            music = noisy - noise
            rest_gain = 10 ** (REST_DB / 20)
            rest_only_noise = stem_noise + rest_gain * (noise - stem_noise)
            rest_only_music = stem_part + rest_gain * (music - stem_part)
            sdr_before, si_before = scores(*trimmed(stem, reference))
            sdr_after, si_after = scores(*trimmed(fx, reference))
            remix_noise, remix_music = (
                db(power(remix - remix_part) / power(noise)),
                db(power(remix_part) / power(music)),
            )
            rest_noise = db(power(rest_only_noise) / power(noise))
            rest_music = db(power(rest_only_music) / power(music))
            # in the stem, without the loudness gain: what hum removal and noise reduction did
            stem_noise_db = db(power(fx - fx_part) / power(stem_noise)) - decided["gain_db"]
            stem_music_db = db(power(fx_part) / power(stem_part)) - decided["gain_db"]
            truth = (50 if index % 2 == 0 else 60) if kind == "hum" else None
            rows.append({
                "clip": sidecar["name"], "noise": kind, "snr_db": snr_db, "performer": performers[p_index]["name"],
                "mains_hz": truth, "mains_hz_found": decided["mains_hz"], "loudness_gain_db": decided["gain_db"],
                "fx_lufs": loudness(fx, rate), "warnings": decided["warnings"],
                "sdr_clean_clip": clean_scores[p_index][0], "si_sdr_clean_clip": clean_scores[p_index][1],
                "sdr_before": sdr_before, "sdr_after": sdr_after, "si_sdr_before": si_before, "si_sdr_after": si_after,
                "remix_noise_change_db": remix_noise, "remix_music_change_db": remix_music,
                "remix_snr_change_db": remix_music - remix_noise,
                "rest_only_noise_change_db": rest_noise, "rest_only_snr_change_db": rest_music - rest_noise,
                "stem_noise_change_db": stem_noise_db, "stem_music_change_db": stem_music_db,
                "stem_snr_change_db": stem_music_db - stem_noise_db,
            })  # fmt: skip
        noisy_clip.unlink()
    return rows


# ---------------------------------------------------------------------------------------------------
# Report

METRICS = (
    "sdr_clean_clip", "sdr_before", "sdr_after", "si_sdr_clean_clip", "si_sdr_before", "si_sdr_after",
    "remix_noise_change_db", "remix_music_change_db", "remix_snr_change_db", "rest_only_noise_change_db",
    "rest_only_snr_change_db", "stem_noise_change_db", "stem_music_change_db", "stem_snr_change_db", "fx_lufs",
)  # fmt: skip


def spread(values: list[float]) -> dict[str, float | None]:
    finite = np.asarray([v for v in values if np.isfinite(v)], dtype=np.float64)
    if not finite.size:
        return {"median": None, "q1": None, "q3": None}
    q1, median, q3 = np.percentile(finite, [25, 50, 75])
    return {"median": round(float(median), 2), "q1": round(float(q1), 2), "q3": round(float(q3), 2)}


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in NOISES:
        mine = [r for r in rows if r["noise"] == kind]
        summary: dict[str, Any] = {"performers": len(mine), "snr_db": NOISES[kind]}
        for metric in METRICS:
            summary[metric] = spread([r[metric] for r in mine])
        summary["sdr_change_db"] = spread([r["sdr_after"] - r["sdr_before"] for r in mine])
        summary["si_sdr_change_db"] = spread([r["si_sdr_after"] - r["si_sdr_before"] for r in mine])
        summary["warnings"] = int(sum(r["warnings"] for r in mine))
        summary["hum_found"] = sum(r["mains_hz_found"] is not None for r in mine)
        summary["hum_found_right"] = sum(
            r["mains_hz_found"] is not None and r["mains_hz_found"] == r["mains_hz"] for r in mine
        )
        summary["loudness_error_lu"] = spread([abs(r["fx_lufs"] - TARGET_LUFS) for r in mine])
        out[kind] = summary
    return out


def cell(s: dict[str, float | None]) -> str:
    if s["median"] is None:
        return "n/a"
    return f"{s['median']:.2f} [{s['q1']:.1f}, {s['q3']:.1f}]"


def markdown(report: dict[str, Any]) -> str:
    summary = report["summary"]
    lines = [
        f"Model `{report['model']}`; {report['duets']} synthetic duets (10 s, split test, condition classic), "
        f"{'each performer' if report['both'] else 'one performer each'} clicked alone; medians [first, third quartile] "
        "in dB over the clicked performers.",
        "",
        "The clicked performer's stem against its true, clean stem:",
        "",
        "| noise (SNR) | performers | SDR clean clip | SDR noisy | SDR noisy + cleanup | SDR change | "
        "SI-SDR noisy | SI-SDR noisy + cleanup | SI-SDR change |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for kind, s in summary.items():
        lines.append(
            f"| {kind} ({s['snr_db']:g} dB) | {s['performers']} | {cell(s['sdr_clean_clip'])} | {cell(s['sdr_before'])} | "
            f"{cell(s['sdr_after'])} | {cell(s['sdr_change_db'])} | {cell(s['si_sdr_before'])} | "
            f"{cell(s['si_sdr_after'])} | {cell(s['si_sdr_change_db'])} |"
        )
    lines += [
        "",
        f"The remix with the preset (cleanup processors, residual {REST_DB:g} dB, the performer at "
        f"{TARGET_LUFS:g} LUFS) against the clip (the remix without a preset): the noise left, the noise-free part's "
        f"level and the SNR change; beside them the residual turned down {-REST_DB:g} dB without the processors:",
        "",
        "| noise | noise | music | SNR change | residual down alone: noise | residual down alone: SNR change |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for kind, s in summary.items():
        lines.append(
            f"| {kind} | {cell(s['remix_noise_change_db'])} | {cell(s['remix_music_change_db'])} | "
            f"{cell(s['remix_snr_change_db'])} | {cell(s['rest_only_noise_change_db'])} | "
            f"{cell(s['rest_only_snr_change_db'])} |"
        )
    lines += [
        "",
        "The clicked performer's processed stem against its separated stem, the loudness gain taken out (what hum "
        "removal and noise reduction did), the loudness it reached, and the hum found in it:",
        "",
        "| noise | noise | music | SNR change | distance from the target (LU) | hum found (right mains) | warnings (no hum found) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for kind, s in summary.items():
        lines.append(
            f"| {kind} | {cell(s['stem_noise_change_db'])} | {cell(s['stem_music_change_db'])} | "
            f"{cell(s['stem_snr_change_db'])} | {cell(s['loudness_error_lu'])} | "
            f"{s['hum_found']}/{s['performers']} ({s['hum_found_right']}) | {s['warnings']} |"
        )
    lines += ["", f"Made by `{report['command']}` in {report['seconds']:.0f} s on {report['machine']}.", ""]
    return "\n".join(lines)


def ensure_set(data: Path, count: int) -> list[Path]:
    from pixelsep_plugin.evaluate.run import find_sidecars

    if len(list(data.glob("*.json"))) < count:
        command = [sys.executable, "-m", "host_bridge.cli.main", "synth", "duet", "--split", "test", "--count",
                   str(count), "--seconds", "10", "--condition", "classic", "-o", str(data), "-q"]  # fmt: skip
        subprocess.run(command, check=True)
    return find_sidecars([data])[:count]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="pixelsep-small")
    parser.add_argument("--data", type=Path, default=Path("data/cleanup-duets"), help="the duets (made when missing)")
    parser.add_argument("--duets", type=int, default=12)
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/cleanup"), help="report path without suffix"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0, help="seed of the noises")
    parser.add_argument("--both", action="store_true", help="click each performer of a duet (default: one, by turns)")
    args = parser.parse_args(argv)

    from pixelsep_plugin.api import Separator

    sidecars = ensure_set(args.data, args.duets)
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="pixelsep-cleanup-") as folder:
        work = Path(folder)
        separator = Separator(args.model, threads=args.threads, cache_root=work / "cache")
        for index, sidecar in enumerate(sidecars):
            rows += run_duet(separator, sidecar, index, work, args.seed, args.both)
            print(f"{index + 1}/{len(sidecars)} {sidecar.stem} ({time.perf_counter() - started:.0f} s)", flush=True)
    command = "python benchmarks/cleanup.py " + " ".join(argv if argv is not None else sys.argv[1:])
    report = {
        "model": separator.package.model_id,
        "duets": len(sidecars),
        "noises_snr_db": NOISES,
        "rest_db": REST_DB,
        "target_lufs": TARGET_LUFS,
        "seed": args.seed,
        "both": args.both,
        "command": command.strip(),
        "machine": f"{platform.machine()}, {args.threads} threads",
        "seconds": round(time.perf_counter() - started, 1),
        "summary": summarise(rows),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
