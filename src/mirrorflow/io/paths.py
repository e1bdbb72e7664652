"""File name templates of the study half's inputs and outputs, for the workflow's rules.

Every name is a BIDS(-Derivatives) name built by :func:`~mirrorflow.io.bids.bids_path`,
with Snakemake's wildcards (``{sub}``, ``{ses}``, ``{run}``, ``{contrast}``, ``{model}``,
``{stat}``, ``{shard}``) left to fill. :class:`StudyPaths` knows the entities that every
name of a kind shares (the task, the template space and resolution, sessions), so each
template below names only what sets it apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from mirrorflow.io.bids import bids_path

__all__ = ["StudyPaths"]


@dataclass(frozen=True)
class StudyPaths:
    """Templates of one study's files.

    Parameters
    ----------
    out : :obj:`str`
        The output folder.
    task : :obj:`str`
        The task label.
    space, res : :obj:`str`
        The template space and resolution of the normalised outputs.
    sessions : :obj:`bool`
        Runs are in sessions (``ses-`` folders and names).
    anat_sessions : :obj:`bool`
        One T1w, and its outputs, per session (``preproc.t1w: session``).
    model_sessions : :obj:`bool`
        One first-level model per session (``firstlevel.sessions: each``).
    """

    out: str
    task: str
    space: str
    res: str
    sessions: bool = False
    anat_sessions: bool = False
    model_sessions: bool = False

    # ---------------------------------------------------------------- entities
    @property
    def run(self) -> dict:
        """Entities of one run: subject, session (with sessions), task and run."""
        ses = "{ses}" if self.sessions else None
        return {"sub": "{sub}", "ses": ses, "task": self.task, "run": "{run}"}

    @property
    def run_id(self) -> str:
        """``sub-{sub}[_ses-{ses}]_task-<task>_run-{run}``: a run's job name."""
        return "_".join(f"{key}-{value}" for key, value in self.run.items() if value)

    @property
    def anat_id(self) -> str:
        """A participant's anatomical job name, or each session's."""
        return "sub-{sub}_ses-{ses}" if self.anat_sessions else "sub-{sub}"

    @property
    def glm_id(self) -> str:
        """A participant's first-level model name, or each session's."""
        return "sub-{sub}_ses-{ses}" if self.model_sessions else "sub-{sub}"

    def _std(self, entities: dict) -> dict:
        return dict(entities, space=self.space, res=self.res)

    def func_dir(self, root: str) -> str:
        """A run's folder under ``root``: ``sub-{sub}[/ses-{ses}]/func``."""
        ses = "/ses-{ses}" if self.sessions else ""
        return f"{root}/sub-{{sub}}{ses}/func"

    # ---------------------------------------------------------------- inputs
    def raw(self, bids_dir: str) -> dict[str, str]:
        """A raw dataset's BOLD series, events and T1w (where the simulator writes them)."""
        func = self.func_dir(bids_dir)
        return {
            "bold": bids_path(func, suffix="bold", **self.run),
            "events": bids_path(func, suffix="events", extension=".tsv", **self.run),
            "t1w": bids_path(f"{bids_dir}/sub-{{sub}}/anat", suffix="T1w", sub="{sub}"),
        }

    def fmriprep(self, fmriprep_dir: str, space: str, res: str | None) -> dict[str, str]:
        """fMRIPrep's outputs of a run that the import reads (in ``space`` at ``res``)."""
        func = self.func_dir(fmriprep_dir)
        std = dict(self.run, space=space, res=res)
        return {
            "bold": bids_path(func, desc="preproc", suffix="bold", **std),
            "mask": bids_path(func, desc="brain", suffix="mask", **std),
            "boldref": bids_path(func, suffix="boldref", **std),
            "confounds": bids_path(func, desc="confounds", suffix="timeseries",
                                   extension=".tsv", **self.run),
        }

    # ---------------------------------------------------------------- preprocessing
    def anat(self) -> dict[str, str]:
        """A participant's (or session's) T1w outputs: brain, mask, transform to the
        template, and both on the template grid."""
        anat_id = self.anat_id
        folder = f"{self.out}/preproc/{anat_id.replace('_', '/')}/anat"
        entities = {"sub": "{sub}", "ses": "{ses}" if self.anat_sessions else None}
        std = self._std(entities)
        return {
            "brain": bids_path(folder, desc="brain", suffix="T1w", **entities),
            "mask": bids_path(folder, desc="brain", suffix="mask", **entities),
            "xfm": f"{folder}/{anat_id}_from-T1w_to-{self.space}_mode-image_xfm.nii.gz",
            "brain_std": bids_path(folder, desc="brain", suffix="T1w", **std),
            "mask_std": bids_path(folder, desc="brain", suffix="mask", **std),
        }

    def preproc(self) -> dict[str, str]:
        """A run's preprocessed (or imported) series, unsmoothed series, mask, confounds
        and reference volume."""
        folder = self.func_dir(f"{self.out}/preproc")
        std = self._std(self.run)
        return {
            "bold": bids_path(folder, desc="preproc", suffix="bold", **std),
            "bold_unsmoothed": bids_path(folder, desc="unsmoothed", suffix="bold", **std),
            "mask": bids_path(folder, desc="brain", suffix="mask", **std),
            "confounds": bids_path(folder, desc="confounds", suffix="timeseries",
                                   extension=".tsv", **self.run),
            "boldref": bids_path(folder, suffix="boldref", **std),
        }

    def qc(self) -> dict[str, str]:
        """A run's QC metrics and its motion, carpet and registration figures."""
        folder = self.func_dir(f"{self.out}/preproc")
        figures = f"{self.out}/preproc/sub-{{sub}}/figures"

        def figure(desc, **entities):
            return bids_path(figures, desc=desc, suffix="bold", extension=".png", **entities)

        return {
            "metrics": bids_path(folder, desc="qc", suffix="metrics", extension=".json",
                                 **self.run),
            "motion": figure("motion", **self.run),
            "carpet": figure("carpet", **self.run),
            "registration": figure("registration", **self._std(self.run)),
        }

    def qc_table(self) -> str:
        """The table of every run's QC metrics and inclusion."""
        return bids_path(f"{self.out}/preproc", task=self.task, desc="qc", suffix="runs",
                         extension=".tsv")

    # ---------------------------------------------------------------- first level
    def _firstlevel(self, folder: str, ses: str | None = None) -> dict[str, str]:
        entities = self._std({"sub": "{sub}", "ses": ses, "task": self.task})
        return {
            "map": bids_path(folder, contrast="{contrast}", stat="{stat}", suffix="statmap",
                             **entities),
            "mask": bids_path(folder, desc="brain", suffix="mask", **entities),
        }

    def firstlevel(self) -> dict[str, str]:
        """A participant's first-level maps (``{contrast}``, ``{stat}``) and mask: what
        the group stage reads (with a model per session: their fixed effects)."""
        return self._firstlevel(f"{self.out}/firstlevel/sub-{{sub}}")

    def glm(self) -> dict[str, str]:
        """The first-level model's own outputs: maps, mask, design table and figure; a
        participant's, or each session's (``model_sessions``)."""
        folder = f"{self.out}/firstlevel/sub-{{sub}}"
        ses = None
        if self.model_sessions:
            folder, ses = f"{folder}/ses-{{ses}}", "{ses}"
        design = {"sub": "{sub}", "ses": ses, "task": self.task, "suffix": "design"}
        return {
            **self._firstlevel(folder, ses),
            "design": bids_path(folder, extension=".tsv", **design),
            "design_figure": bids_path(f"{folder}/figures", extension=".png", **design),
        }

    # ---------------------------------------------------------------- group
    def group(self, *, desc=None, stat=None, suffix="statmap", extension=".nii.gz",
              contrast="{contrast}", model="{model}", std=True, folder="group",
              **entities) -> str:
        """A file of a group model (``{contrast}``, ``{model}``) in ``group/`` (or another
        ``folder`` of the output folder); ``std``: in the template space, at its
        resolution."""
        names = dict(task=self.task, contrast=contrast, model=model, stat=stat, desc=desc,
                     **entities)
        if std:
            names = self._std(names)
        return bids_path(f"{self.out}/{folder}", suffix=suffix, extension=extension, **names)

    def group_figure(self, view, contrast="{contrast}", model="{model}", desc=None) -> str:
        """Figure (``glassbrain`` or ``slices``) of a thresholded group map."""
        desc = f"{desc}{view[0].upper()}{view[1:]}" if desc else view
        entities = {"task": self.task, "contrast": contrast, "model": model, "stat": "z",
                    "desc": desc}
        return bids_path(f"{self.out}/group/figures", suffix="statmap", extension=".png",
                         **self._std(entities))
