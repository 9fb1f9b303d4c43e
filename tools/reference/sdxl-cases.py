#!/usr/bin/python3
"""Writes Gesso's own SDXL pipeline conformance cases with diffusers as the reference.

../shared/conformance checks tiny-sdxl in txt2img and img2img from its diffusers folder and its
F16 single file. These cases add what issue 16 asks beyond them:
  - the 9-channel SDXL inpainting UNet in StableDiffusionXLInpaintPipeline;
  - few-step models' trailing timestep spacing (SDXL-Turbo: Euler ancestral, no guidance;
    Lightning: Euler, guidance 1);
  - a BF16 single file.
The shared set has no 9-channel SDXL UNet and no BF16 SDXL file, and its data may not be
copied into the project, so those two cases name a model *derived* from tiny-sdxl by a fixed
rule that the harness applies too (tests/conformance/derived-models.c):
  inpaint-9ch  tiny-sdxl's diffusers folder with conv_in widened from 4 to 9 inputs (latent,
               mask, masked-image latent); input channel c >= 4 of output o, kernel cell k
               (row-major 3x3) gets ((o * 9 + (c - 4) * 5 + k) % 23 - 11) / 256, exact in F16.
  bf16         tiny-sdxl's F16 single file with every tensor rounded to BF16 (nearest, ties to
               even), its diffusers folder beside it for the configs.

Each case runs the real diffusers pipeline twice: in float32, whose outputs are stored, and in
float64 with the same noise, whose difference sets the tolerance (20x, with floors), as the
shared cases do. Every Gaussian draw is recorded in draw order (noise_k). The prompts are
encoded by the real text encoders (CLIPTextModel, CLIPTextModelWithProjection) from token ids
written here: the reference root has no Rust tokenizers, and every word of these prompts is one
token of CLIP's vocabulary (the tokenizer family checks Gesso's tokenizer). The encoding is
checked against the shared txt2img case's recorded prompt_embeds before anything is written.

Run in a Debian 13 root with python3-torch, diffusers from its public source (see
tools/reference/README.md):
    sdxl-cases.py --shared ../shared/conformance --out tests/conformance/cases
"""
import argparse
import json
import os

import torch
from safetensors.torch import load_file

import diffusers.models.autoencoders.vae as vae_module
from diffusers import (AutoencoderKL, EulerAncestralDiscreteScheduler, EulerDiscreteScheduler,
                       StableDiffusionXLInpaintPipeline, StableDiffusionXLPipeline,
                       UNet2DConditionModel)
from diffusers.pipelines.stable_diffusion_xl import (pipeline_stable_diffusion_xl,
                                                     pipeline_stable_diffusion_xl_inpaint)
from diffusers.schedulers import scheduling_euler_ancestral_discrete
from transformers import CLIPTextModel, CLIPTextModelWithProjection

from reference_case import NoiseTape, install, save_pipeline_case

BASE_CASE = "pipeline/txt2img-tiny-sdxl-euler-5steps-00"
PATCHED = [pipeline_stable_diffusion_xl, pipeline_stable_diffusion_xl_inpaint, vae_module,
           scheduling_euler_ancestral_discrete]
PROMPT, NEGATIVE = "a photo of a cat", "blurry, low quality"
# CLIP BPE ids (vocab.json): every word here is a single token
IDS = {PROMPT: [320, 1125, 539, 320, 2368], NEGATIVE: [21977, 267, 1042, 3027]}
BOS, EOS = 49406, 49407


def token_ids(text, pad):
    ids = [BOS] + IDS[text] + [EOS]
    return torch.tensor([ids + [pad] * (77 - len(ids))])


def widen_conv_in(unet):
    """The inpaint-9ch rule (see the module's docstring)."""
    old = unet.conv_in.weight.data
    out, _, kh, kw = old.shape
    new = torch.zeros((out, 9, kh, kw), dtype=old.dtype)
    new[:, :4] = old
    for o in range(out):
        for c in range(4, 9):
            for k in range(kh * kw):
                new[o, c, k // kw, k % kw] = ((o * 9 + (c - 4) * 5 + k) % 23 - 11) / 256.0
    conv = torch.nn.Conv2d(9, out, (kh, kw), padding=unet.conv_in.padding)
    conv.weight.data = new
    conv.bias.data = unet.conv_in.bias.data.clone()
    unet.conv_in = conv
    unet.register_to_config(in_channels=9)
    return unet


def to_bf16_values(module):
    for p in module.parameters():
        p.data = p.data.to(torch.bfloat16).to(torch.float32)
    return module


def components(models, derive, dtype):
    d = os.path.join(models, "tiny-sdxl", "diffusers")
    c = dict(unet=UNet2DConditionModel.from_pretrained(os.path.join(d, "unet")),
             vae=AutoencoderKL.from_pretrained(os.path.join(d, "vae")),
             te1=CLIPTextModel.from_pretrained(os.path.join(d, "text_encoder")),
             te2=CLIPTextModelWithProjection.from_pretrained(os.path.join(d, "text_encoder_2")))
    if derive == "inpaint-9ch":
        widen_conv_in(c["unet"])
    elif derive == "bf16":
        for m in c.values():
            to_bf16_values(m)
    # in float64 an upcast would turn the VAE to float32 halfway through the run
    c["vae"].register_to_config(force_upcast=False)
    for m in c.values():
        m.to(dtype).eval()
    return c


def encode(c, text):
    """diffusers' encode_prompt for SDXL: both encoders' penultimate states side by side; the
    pooled embedding is the second encoder's projected output."""
    with torch.no_grad():
        h1 = c["te1"](token_ids(text, EOS), output_hidden_states=True).hidden_states[-2]
        o2 = c["te2"](token_ids(text, 0), output_hidden_states=True)
    return torch.cat([h1, o2.hidden_states[-2]], dim=-1), o2.text_embeds


def make_pipe(kind, c, scheduler):
    cls = StableDiffusionXLInpaintPipeline if kind == "inpaint" else StableDiffusionXLPipeline
    extra = {"requires_aesthetics_score": False} if kind == "inpaint" else {}
    pipe = cls(vae=c["vae"], text_encoder=c["te1"], text_encoder_2=c["te2"], tokenizer=None,
               tokenizer_2=None, unet=c["unet"], scheduler=scheduler,
               force_zeros_for_empty_prompt=True, **extra)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def scheduler_for(spec, base_config):
    config = dict(base_config)
    config.update(spec.get("scheduler_overrides", {}))
    cls = {"EulerDiscreteScheduler": EulerDiscreteScheduler,
           "EulerAncestralDiscreteScheduler": EulerAncestralDiscreteScheduler}[spec["scheduler"]]
    return cls.from_config(config), config


def run(spec, c, base_config, inputs, dtype):
    scheduler, _ = scheduler_for(spec, base_config)
    pipe = make_pipe(spec["kind"], c, scheduler)
    steps, timesteps = [], []

    def on_step(p, i, t, kw):
        steps.append(kw["latents"].detach().clone())
        timesteps.append(float(t))
        return kw

    embeds, pooled = encode(c, PROMPT)
    args = dict(prompt_embeds=embeds, pooled_prompt_embeds=pooled,
                num_inference_steps=spec["steps"], guidance_scale=spec["guidance"],
                height=128, width=128, latents=inputs["latents"].to(dtype),
                output_type="latent", callback_on_step_end=on_step)
    if spec["guidance"] > 1:
        neg, neg_pooled = encode(c, NEGATIVE)
        args.update(negative_prompt_embeds=neg, negative_pooled_prompt_embeds=neg_pooled)
    if spec["kind"] == "inpaint":
        args.update(image=inputs["image_in"].to(dtype), mask_image=inputs["mask_in"].to(dtype),
                    strength=1.0)
    with torch.no_grad():
        final = pipe(**args).images
        decoded = c["vae"].decode(final / c["vae"].config.scaling_factor).sample
    return dict(step_latents=torch.stack(steps), step_timesteps=torch.tensor(timesteps),
                final_latents=final, decoded=decoded, image=(decoded / 2 + 0.5).clamp(0, 1))


def inputs_for(spec):
    g = torch.Generator().manual_seed(spec["seed"])
    out = {"latents": torch.randn((1, 4, 16, 16), generator=g)}
    if spec["kind"] == "inpaint":
        # a smooth picture with an edge, and a box to repaint
        y, x = torch.meshgrid(torch.linspace(0, 1, 128), torch.linspace(0, 1, 128),
                              indexing="ij")
        out["image_in"] = torch.stack([x, y, 0.5 * (x > 0.5).float() + 0.25])[None].contiguous()
        mask = torch.zeros((1, 1, 128, 128))
        mask[..., 32:96, 40:104] = 1.0
        out["mask_in"] = mask
    return out


def check_encoding(shared, models):
    """Our token ids and encoding give the shared case's recorded text conditioning."""
    recorded = load_file(os.path.join(shared, BASE_CASE + ".safetensors"))
    c = components(models, None, torch.float32)
    neg, neg_pooled = encode(c, NEGATIVE)
    pos, pos_pooled = encode(c, PROMPT)
    err = max(float((torch.cat([neg, pos]) - recorded["prompt_embeds"]).abs().max()),
              float((torch.cat([neg_pooled, pos_pooled]) - recorded["add_text_embeds"]).abs().max()))
    assert err < 1e-5, "the encoding differs from %s's by %g" % (BASE_CASE, err)
    return err


def write_case(spec, shared, out_dir, base_manifest):
    models = os.path.join(shared, "models")
    inputs = inputs_for(spec)
    tape = NoiseTape()
    install(tape, PATCHED)
    torch.manual_seed(spec["seed"])
    got32 = run(spec, components(models, spec.get("derive"), torch.float32),
                base_manifest["scheduler_config"], inputs, torch.float32)
    tape.replay = True
    got64 = run(spec, components(models, spec.get("derive"), torch.float64),
                base_manifest["scheduler_config"], inputs, torch.float64)
    assert tape.next == len(tape.draws), "the float64 run drew differently"
    err = {k: float((got32[k].double() - got64[k]).abs().max())
           for k in ("step_latents", "final_latents", "image")}
    name = spec["name"]
    tensors = dict(inputs)
    tensors.update(got32)
    tensors.update(tape.tensors())
    _, scheduler_config = scheduler_for(spec, base_manifest["scheduler_config"])
    params = {"prompt": PROMPT, "height": 128, "width": 128,
              "num_inference_steps": spec["steps"], "guidance_scale": spec["guidance"]}
    if spec["guidance"] > 1:
        params["negative_prompt"] = NEGATIVE
    if spec["kind"] == "inpaint":
        params["strength"] = 1.0
    manifest = {
        "pipeline": ("StableDiffusionXLInpaintPipeline" if spec["kind"] == "inpaint"
                     else "StableDiffusionXLPipeline"),
        "model": "tiny-sdxl",
        "scheduler": spec["scheduler"], "scheduler_config": scheduler_config,
        "prediction_type": "epsilon", "params": params,
        "force_zeros_for_empty_prompt": True,
        "noise_draws": tape.manifest(),
        "inputs": sorted(inputs),
        "outputs": ["step_latents", "step_timesteps", "final_latents", "decoded", "image"],
        "notes": spec["notes"] + " The prompts are encoded by tiny-sdxl's text encoders (token "
                 "ids written by the generator, checked against %s's recorded prompt_embeds) "
                 "and passed as prompt_embeds/pooled_prompt_embeds. latents is the unscaled "
                 "initial noise; image_in and mask_in in [0,1]; decoded = vae.decode("
                 "final_latents / 0.13025); image = (decoded/2+0.5).clamp(0,1)." % BASE_CASE,
    }
    extra = ({"derived_model": {"from": "tiny-sdxl", "rule": spec["derive"]}}
             if spec.get("derive") else None)
    save_pipeline_case(out_dir, name, manifest, tensors, err, "tools/reference/sdxl-cases.py", extra)
    print("%s: fp32 vs fp64 %s, %d draws" % (name, err, len(tape.draws)))


SPECS = [
    dict(name="inpaint-tiny-sdxl-inpaint9-euler-6steps-00", kind="inpaint", derive="inpaint-9ch",
         scheduler="EulerDiscreteScheduler", steps=6, guidance=5.0, seed=11,
         notes="StableDiffusionXLInpaintPipeline with the 9-channel UNet derived from tiny-sdxl "
               "by the inpaint-9ch rule, strength 1, requires_aesthetics_score false (SDXL "
               "base's). The masked image is encoded by sampling the VAE's posterior: that "
               "draw is recorded."),
    dict(name="txt2img-tiny-sdxl-turbo-euler-a-trailing-2steps-00", kind="txt2img",
         scheduler="EulerAncestralDiscreteScheduler", steps=2, guidance=0.0, seed=12,
         scheduler_overrides={"timestep_spacing": "trailing"},
         notes="SDXL-Turbo's sampling: Euler ancestral on trailing timesteps, guidance 0 (no "
               "classifier-free guidance, no negative prompt)."),
    dict(name="txt2img-tiny-sdxl-lightning-euler-trailing-4steps-00", kind="txt2img",
         scheduler="EulerDiscreteScheduler", steps=4, guidance=1.0, seed=13,
         scheduler_overrides={"timestep_spacing": "trailing"},
         notes="SDXL-Lightning's sampling: Euler on trailing timesteps, guidance 1 (no "
               "classifier-free guidance)."),
    dict(name="txt2img-tiny-sdxl-bf16-euler-5steps-00", kind="txt2img", derive="bf16",
         scheduler="EulerDiscreteScheduler", steps=5, guidance=5.0, seed=14,
         notes="tiny-sdxl with every weight rounded to BF16 (the bf16 rule), as a BF16 single "
               "file stores it."),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", required=True, help="../shared/conformance")
    ap.add_argument("--out", required=True, help="tests/conformance/cases")
    args = ap.parse_args()
    torch.set_num_threads(1)
    with open(os.path.join(args.shared, BASE_CASE + ".json")) as f:
        base_manifest = json.load(f)
    print("text encoding vs %s: %g" % (BASE_CASE,
                                       check_encoding(args.shared,
                                                      os.path.join(args.shared, "models"))))
    for spec in SPECS:
        write_case(spec, args.shared, args.out, base_manifest)


if __name__ == "__main__":
    main()
