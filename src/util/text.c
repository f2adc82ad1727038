/* text.c — see text.h. */
#include "util/text.h"

void cpex__text_one_line(char *s)
{
    if (!s)
        return;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = ' ';
}
