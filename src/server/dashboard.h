/* The live dashboard: what the endpoint adds to the HTML report's page. Not installed. */
#ifndef PO__SERVER_DASHBOARD_H
#define PO__SERVER_DASHBOARD_H

/* HTML inserted before </body>: a status bar and a script that reloads the page from the same URL
 * every refresh_s seconds (with If-None-Match) and swaps in each section whose content changed,
 * keeping table sort orders and scroll positions. The charts are re-rendered by the server with
 * the report's own renderer, so the dashboard draws exactly what the report draws. malloc'd;
 * NULL on ENOMEM. */
char *po__dashboard_html(int refresh_s);

#endif
