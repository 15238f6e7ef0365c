/* SPDX-License-Identifier: BSD-3-Clause */
/* The table of built-in operator types, as named in job files. */
#include <string.h>

#include "sluice/operators.h"

static const struct sl_operator_ops *const builtins[] = {
	&sl_op_generator,     &sl_op_file_source,	&sl_op_ethdev_source,
	&sl_op_project,	      &sl_op_filter,		&sl_op_keyed_aggregate,
	&sl_op_window_aggregate, &sl_op_null_sink,	&sl_op_file_sink,
	&sl_op_count_sink,
};

static const char *names[sizeof(builtins) / sizeof(builtins[0]) + 1];

const struct sl_operator_ops *sl_builtin_find(const char *type)
{
	for (unsigned i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++)
		if (strcmp(builtins[i]->type, type) == 0)
			return builtins[i];
	return NULL;
}

const char *const *sl_builtin_names(void)
{
	if (names[0] == NULL)
		for (unsigned i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++)
			names[i] = builtins[i]->type;
	return names;
}
