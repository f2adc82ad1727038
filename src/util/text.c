/* text.c — see text.h. */
#include "util/text.h"

#include <stdarg.h>
#include <stdio.h>

void cpex__text_one_line(char *s)
{
    if (!s)
        return;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = ' ';
}

void cpex__textbuf_init(cpex__textbuf *t, char *buf, size_t cap)
{
    t->buf = buf;
    t->cap = cap;
    t->len = 0;
    buf[0] = '\0';
}

void cpex__textbuf_add(cpex__textbuf *t, const char *fmt, ...)
{
    if (t->len + 1 >= t->cap)
        return; /* full */
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t room = t->cap - t->len - 1;
    t->len += (size_t)n < room ? (size_t)n : room;
}

void cpex__textbuf_join(cpex__textbuf *t, const char *const *items, size_t count)
{
    for (size_t i = 0; i < count; i++)
        cpex__textbuf_add(t, "%s%s", i ? ", " : "", items[i]);
}
