"""The methods section of the study report, as one HTML document.

Nothing in it is written by hand for one run: each paragraph is the ``Description`` that
the job which made a derivative wrote into its sidecar (with the parameters it was given
and the versions it ran with), set in order beside the configuration, the counts read
from the outputs, the software versions recorded in the sidecars' ``Provenance`` blocks,
the regions compared with the model studies, and the references.
"""

from __future__ import annotations

import html

import pandas as pd

__all__ = ["REFERENCES", "methods_html"]

#: Key -> reference, cited as [key] in the text.
REFERENCES = {
    "Braadbaart2014": "Braadbaart L, de Grauw H, Perrett DI, Waiter GD, Williams JHG (2014). "
    "The shared neural basis of empathy and facial imitation accuracy. NeuroImage 84:367-375. "
    "doi:10.1016/j.neuroimage.2013.08.061",
    "Fu2025": "Fu Y, Wang D, Liu J, Wang H, Wen F, Chen W, Liu Z (2025). The shared neural "
    "substrates of emotional mimicry and emotional contagion: an activation likelihood "
    "estimation meta-analysis and meta-analytic connectivity modeling analysis. Social "
    "Cognitive and Affective Neuroscience. doi:10.1093/scan/nsaf091",
    "Snakemake": "Mölder F, Jablonski KP, Letcher B, et al. (2021). Sustainable data "
    "analysis with Snakemake. F1000Research 10:33. doi:10.12688/f1000research.29032.2",
    "nipype": "Gorgolewski K, Burns CD, Madison C, et al. (2011). Nipype: a flexible, "
    "lightweight and extensible neuroimaging data processing framework in Python. Frontiers "
    "in Neuroinformatics 5:13. doi:10.3389/fninf.2011.00013",
    "nilearn": "Abraham A, Pedregosa F, Eickenberg M, et al. (2014). Machine learning for "
    "neuroimaging with scikit-learn. Frontiers in Neuroinformatics 8:14. "
    "doi:10.3389/fninf.2014.00014",
    "NiMARE": "Salo T, Yarkoni T, Nichols TE, et al. (2023). NiMARE: Neuroimaging "
    "Meta-Analysis Research Environment. Aperture Neuro 3. doi:10.52294/001c.87681",
    "nipy": "Roche A (2011). A four-dimensional registration algorithm with application to "
    "joint correction of motion and slice timing in fMRI. IEEE Transactions on Medical "
    "Imaging 30(8):1546-1554. doi:10.1109/TMI.2011.2131152",
    "ANTs": "Avants BB, Epstein CL, Grossman M, Gee JC (2008). Symmetric diffeomorphic "
    "image registration with cross-correlation: evaluating automated labeling of elderly "
    "and neurodegenerative brain. Medical Image Analysis 12(1):26-41. "
    "doi:10.1016/j.media.2007.06.004",
    "Power2012": "Power JD, Barnes KA, Snyder AZ, Schlaggar BL, Petersen SE (2012). "
    "Spurious but systematic correlations in functional connectivity MRI networks arise "
    "from subject motion. NeuroImage 59(3):2142-2154. doi:10.1016/j.neuroimage.2011.10.018",
    "Behzadi2007": "Behzadi Y, Restom K, Liau J, Liu TT (2007). A component based noise "
    "correction method (CompCor) for BOLD and perfusion based fMRI. NeuroImage "
    "37(1):90-101. doi:10.1016/j.neuroimage.2007.04.042",
    "Winkler2014": "Winkler AM, Ridgway GR, Webster MA, Smith SM, Nichols TE (2014). "
    "Permutation inference for the general linear model. NeuroImage 92:381-397. "
    "doi:10.1016/j.neuroimage.2014.01.060",
    "Nichols2005": "Nichols T, Brett M, Andersson J, Wager T, Poline JB (2005). Valid "
    "conjunction inference with the minimum statistic. NeuroImage 25(3):653-660. "
    "doi:10.1016/j.neuroimage.2004.12.005",
    "Turkeltaub2002": "Turkeltaub PE, Eden GF, Jones KM, Zeffiro TA (2002). Meta-analysis "
    "of the functional neuroanatomy of single-word reading: method and validation. "
    "NeuroImage 16(3):765-780. doi:10.1006/nimg.2002.1131",
    "Eickhoff2009": "Eickhoff SB, Laird AR, Grefkes C, Wang LE, Zilles K, Fox PT (2009). "
    "Coordinate-based activation likelihood estimation meta-analysis of neuroimaging data: "
    "a random-effects approach based on empirical estimates of spatial uncertainty. Human "
    "Brain Mapping 30(9):2907-2926. doi:10.1002/hbm.20718",
    "Eickhoff2012": "Eickhoff SB, Bzdok D, Laird AR, Kurth F, Fox PT (2012). Activation "
    "likelihood estimation meta-analysis revisited. NeuroImage 59(3):2349-2361. "
    "doi:10.1016/j.neuroimage.2011.09.017",
    "Eickhoff2011": "Eickhoff SB, Bzdok D, Laird AR, et al. (2011). Co-activation patterns "
    "distinguish cortical modules, their connectivity and functional differentiation. "
    "NeuroImage 57(3):938-949. doi:10.1016/j.neuroimage.2011.05.021",
    "Robinson2010": "Robinson JL, Laird AR, Glahn DC, Lovallo WR, Fox PT (2010). "
    "Metaanalytic connectivity modeling: delineating the functional connectivity of the "
    "human amygdala. Human Brain Mapping 31(2):173-184. doi:10.1002/hbm.20854",
    "Yarkoni2011": "Yarkoni T, Poldrack RA, Nichols TE, Van Essen DC, Wager TD (2011). "
    "Large-scale automated synthesis of human functional neuroimaging data. Nature Methods "
    "8(8):665-670. doi:10.1038/nmeth.1635",
}

_STYLE = (
    "body{font-family:sans-serif;max-width:60em;margin:1em auto;line-height:1.45}"
    "table{border-collapse:collapse;font-size:90%}td,th{border:1px solid #bbb;"
    "padding:2px 6px;text-align:left;vertical-align:top}h2{margin-top:1.4em}"
)


def _p(text) -> str:
    return f"<p>{html.escape(str(text))}</p>"


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, border=0, na_rep="", escape=True)


def _description(sidecar: dict) -> str:
    return sidecar.get("Description", "") if sidecar else ""


def _software(sidecars) -> pd.DataFrame:
    """Package, version(s) and the rules that ran with it, from the Provenance blocks."""
    used: dict[tuple[str, str], set[str]] = {}
    for sidecar in sidecars:
        block = (sidecar or {}).get("Provenance", {})
        for name, version in block.get("Software", {}).items():
            used.setdefault((name, version), set()).add(block.get("Rule", "?"))
    rows = [(name, version, ", ".join(sorted(rules)))
            for (name, version), rules in sorted(used.items())]
    return pd.DataFrame(rows, columns=["software", "version", "rules"])


def _data_paragraph(config: dict, qc: pd.DataFrame) -> str:
    study, sim = config["study"], config["simulation"]
    if study["source"] == "simulate":
        text = (
            f"Data: the embedded simulated study (mirrorflow's seeded simulator, seed "
            f"{sim['seed']}): {sim['n_subjects']} participants, {sim['n_runs']} run(s) each of "
            f"{sim['n_blocks']} blocks per condition, TR {sim['tr']} s, with planted "
            "imitation and mismatch effects, EQ and accuracy effects on imitation activity "
            f"(slopes {sim['eq_slope']} and {sim['accuracy_slope']}) and a planted EQ-"
            f"accuracy correlation of {sim['eq_accuracy_r']}."
        )
    else:
        where = study["fmriprep_dir"] if study["source"] == "fmriprep" else study["bids_dir"]
        text = (f"Data: task '{study['task']}' of the {study['source']} dataset at {where} "
                f"(participants' scores: {study.get('participants') or 'participants.tsv'}).")
    n_out = int((~qc["included"].astype(bool)).sum())
    text += (
        f" Quality control: {len(qc)} runs, {n_out} excluded (mean framewise displacement "
        f"above {config['qc']['max_mean_fd']} mm); {qc.loc[qc['included'], 'sub'].nunique()}"
        " participants entered the group analyses."
    )
    return _p(text)


def methods_html(config: dict, *, stages: dict, summaries: dict, behaviour: dict,
                 qc: pd.DataFrame, n_macm_experiments: int,
                 comparison: pd.DataFrame) -> str:
    """The methods document.

    ``stages`` maps each part of the workflow to the sidecars (dicts) of its derivatives:
    ``anat``, ``bold`` (lists, may be empty), ``firstlevel``, ``overlap``, ``conjunction``,
    ``macm_seed``, ``macm`` (one sidecar each), ``group`` (``{name: (model sidecar,
    thresholded sidecar)}``), ``ale`` and ``contrast`` (``{name: sidecar}``).
    ``summaries`` are the coordinate summaries by category."""
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>mirrorflow methods"
             f"</title><style>{_STYLE}</style></head><body><h1>Methods</h1>"]
    parts.append(_p(
        "The analysis was run with mirrorflow, a Snakemake workflow [Snakemake]: a task-fMRI "
        "study after [Braadbaart2014] and a coordinate-based meta-analysis with "
        "meta-analytic connectivity modelling after [Fu2025]. Each paragraph below is the "
        "description written by the job that made the derivatives, with its parameters and "
        "software versions; every derivative's JSON sidecar records the same, with the "
        "configuration and the checksums of its inputs."))
    parts.append("<h2>Data and quality control</h2>" + _data_paragraph(config, qc)
                 + _p(_description(stages.get("qc"))))

    parts.append("<h2>Preprocessing</h2>")
    for key in ("anat", "bold"):
        if stages.get(key):
            parts.append(_p(_description(stages[key][0])))
    if stages.get("anat"):  # preprocessed here (not imported from fMRIPrep)
        parts.append(_p("Software: preprocessing in nipype [nipype] with nipy's "
                        "SpaceTimeRealigner [nipy] and ANTs registration [ANTs]; confounds "
                        "after [Power2012] and [Behzadi2007]."))

    parts.append("<h2>First-level models</h2>" + _p(_description(stages["firstlevel"])
                                                    + " [nilearn]"))

    parts.append("<h2>Group analyses</h2>")
    for name, (model, thresholded) in stages["group"].items():
        parts.append(f"<h3>{html.escape(name)}</h3>" + _p(_description(model)) +
                     _p(_description(thresholded)))
    parts.append(_p("Permutation inference after [Winkler2014]. Overlap of the "
                    "regressions: " + _description(stages["overlap"]) + " [Nichols2005]"))
    low, high = behaviour["pearson_r_ci95"]
    parts.append(_p(
        f"Behaviour: {behaviour['x']} and {behaviour['y']} correlated with Pearson's r = "
        f"{behaviour['pearson_r']:.3f} (p = {behaviour['pearson_p']:.3g}; 95% percentile "
        f"bootstrap CI [{low:.3f}, {high:.3f}], {behaviour['bootstrap_samples']} resamples "
        f"of the {behaviour['n']} participants; Spearman's rho = "
        f"{behaviour['spearman_rho']:.3f})."))

    parts.append("<h2>Coordinate-based meta-analysis</h2>")
    for category, summary in summaries.items():
        parts.append(_p(f"{summary.get('Description', category)} Source: "
                        f"{summary.get('Source', summary.get('Format'))}."))
    for name, sidecar in stages["ale"].items():
        parts.append(f"<h3>ALE: {html.escape(name)}</h3>" + _p(_description(sidecar)))
    parts.append("<h3>Conjunction</h3>" + _p(_description(stages["conjunction"])))
    for name, sidecar in stages["contrast"].items():
        parts.append(f"<h3>Contrast: {html.escape(name)}</h3>" + _p(_description(sidecar)))
    parts.append(_p("ALE after [Turkeltaub2002], [Eickhoff2009] and [Eickhoff2012]; "
                    "subtraction after [Eickhoff2011]; all estimation by NiMARE [NiMARE]."))

    parts.append("<h2>Meta-analytic connectivity modelling</h2>")
    parts.append(_p(_description(stages["macm_seed"])))
    parts.append(_p(f"{n_macm_experiments} experiments of the reference database "
                    f"[Yarkoni2011] have at least one focus in the seed. "
                    + _description(stages["macm"]) + " MACM after [Robinson2010]."))

    parts.append("<h2>Regions found and regions reported by the model studies</h2>")
    parts.append(_p("A reported region counts as found when a peak or sub-peak of the "
                    "mirrorflow map compared with it carries one of its atlas labels, and "
                    "as in a cluster when no peak does but it holds at least 1% of a "
                    "cluster's voxels (the cluster's composition)."))
    parts.append(_table(comparison))

    every = [*stages.get("anat", []), *stages.get("bold", []), stages["firstlevel"],
             *[s for pair in stages["group"].values() for s in pair], stages["overlap"],
             *stages["ale"].values(), stages["conjunction"], *stages["contrast"].values(),
             stages["macm_seed"], stages["macm"]]
    parts.append("<h2>Software versions</h2>" + _table(_software(every)))
    cited = [key for key in REFERENCES if any(f"[{key}]" in part for part in parts)]
    parts.append("<h2>References</h2><ul>" + "".join(
        f"<li>[{html.escape(key)}] {html.escape(REFERENCES[key])}</li>" for key in cited)
        + "</ul></body></html>")
    return "\n".join(parts)
