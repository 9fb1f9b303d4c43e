/* gesso: the engine from a terminal. */
#include "gesso-config.h"

#include <glib.h>
#include <glib/gi18n.h>
#include <locale.h>

#include "gesso.h"

int
main (int argc, char **argv)
{
  setlocale (LC_ALL, "");
  g_print ("gesso %s\n", gesso_version ());
  return 0;
}
