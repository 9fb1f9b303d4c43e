/* diffusers ResnetBlock2D as SD uses it ("default" time embedding: added, not scale-shift):
 *
 *   h = conv1(SiLU(GroupNorm1(x))) + time_emb_proj(SiLU(temb))   (per channel)
 *   h = conv2(SiLU(GroupNorm2(h)))                                (dropout: none at inference)
 *   out = shortcut(x) + h       shortcut = 1x1 conv when the channel count changes, else x
 */
#include "model/unet_private.h"

gboolean
unet_resnet_forward (UnetExec *x, const UnetGlobals *g, const UnetResnet *r, const float *in,
                     float *out, int64_t batch, int64_t height, int64_t width,
                     const float *temb_act, GError **error)
{
  const int64_t cin = r->in_channels, cout = r->out_channels, hw = height * width;
  size_t mark = unet_exec_mark (x);
  float *a, *b, *tproj;
  gboolean ok = FALSE;

  a = unet_exec_alloc (x, (size_t) (batch * cin * hw), error);
  b = a ? unet_exec_alloc (x, (size_t) (batch * cout * hw), error) : NULL;
  tproj = b ? unet_exec_alloc (x, (size_t) (batch * cout), error) : NULL;
  if (tproj == NULL)
    goto out;

  if (unet_exec_computing (x))
    {
      gesso_group_norm (in, batch, cin, hw, g->groups, g->resnet_eps, r->norm1.gamma,
                        r->norm1.beta, a);
      gesso_silu (a, (size_t) (batch * cin * hw));
    }
  if (!unet_conv (x, &r->conv1, a, out, batch, cin, height, width, cout, 3, 1, error))
    goto out;

  if (unet_exec_computing (x))
    {
      /* each batch element has its own timestep, so its own per-channel offset */
      gesso_linear_weight (temb_act, batch, g->time_embed_dim, &r->time_emb_proj.weight,
                           r->time_emb_proj.bias, cout, tproj);
      for (int64_t i = 0; i < batch; i++)
        gesso_add_channel_bias (out + i * cout * hw, 1, cout, hw, tproj + i * cout);
      gesso_group_norm (out, batch, cout, hw, g->groups, g->resnet_eps, r->norm2.gamma,
                        r->norm2.beta, b);
      gesso_silu (b, (size_t) (batch * cout * hw));
    }
  if (!unet_conv (x, &r->conv2, b, out, batch, cout, height, width, cout, 3, 1, error))
    goto out;

  if (cin != cout)
    {
      /* B is free again: it takes the projected input */
      if (!unet_conv (x, &r->conv_shortcut, in, b, batch, cin, height, width, cout, 1, 1,
                      error))
        goto out;
      if (unet_exec_computing (x))
        gesso_add (out, b, (size_t) (batch * cout * hw));
    }
  else if (unet_exec_computing (x))
    gesso_add (out, in, (size_t) (batch * cout * hw));
  ok = TRUE;

out:
  unet_exec_reset (x, mark);
  return ok;
}
