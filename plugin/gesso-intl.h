/* Gesso: gettext for the plug-in. Domain "gesso" (GETTEXT_PACKAGE, set by meson). */
#ifndef GESSO_INTL_H
#define GESSO_INTL_H

#include <glib/gi18n-lib.h>

#endif /* GESSO_INTL_H */
