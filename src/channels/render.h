/* render.h: the plain-text form of any AppMessage, for channels (SMS above all) that cannot
 * carry a rich type natively: choices become numbered lines, cards and carousels become
 * title, description, media link and choices, locations a map link, contacts a vCard-like
 * text. One renderer, so every channel falls back the same way (docs/channels.md). */
#ifndef PARLEY_CHANNEL_RENDER_H
#define PARLEY_CHANNEL_RENDER_H

#include "base/err.h"

#include <jansson.h>

/* malloc'd text, or NULL with INVALID_ARGUMENT for what has no text form (templates). */
char *channel_render_text(json_t *app_message, err_t *e);
/* The text of one Choice ("Yes", "Docs: https://...", "Call us: +4670..."). Borrowed
 * pointers are not kept; out is malloc'd. */
char *channel_render_choice(json_t *choice);

#endif
