/* The live dashboard's status bar and refresh script (see dashboard.h). Inline only: the page's
 * Content-Security-Policy allows no other origin, and nothing is fetched but the page itself. */
#include "server/dashboard.h"

#include "base/base.h"

#include <stdio.h>
#include <stdlib.h>

/* %d: the refresh period in seconds (used three times). */
static const char TEMPLATE[] =
    "<style>#po-live{position:fixed;top:8px;right:12px;background:#fff;border:1px solid #ccc;"
    "border-radius:12px;padding:3px 12px;font-size:12px;color:#333;box-shadow:0 1px 3px "
    "rgba(0,0,0,.15)}#po-live[data-state=bad]{border-color:#D55E00;color:#D55E00}</style>\n"
    "<div id=\"po-live\" data-state=\"ok\">live &#183; refreshes every %d s</div>\n"
    "<script>(function(){var every=%d*1000,etag=null,sorts={},"
    "bar=document.getElementById('po-live');"
    "function show(t,bad){bar.textContent=t;bar.setAttribute('data-state',bad?'bad':'ok');}"
    "function key(t){var s=t.closest('section');var all=s?s.querySelectorAll('table.sortable'):[];"
    "return(s?s.id:'')+':'+Array.prototype.indexOf.call(all,t);}"
    "function sortBy(t,i,asc){var b=t.tBodies[0];if(!b)return;"
    "var rows=Array.prototype.filter.call(b.rows,function(r){return!r.classList.contains('sub');});"
    "rows.sort(function(a,c){var x=a.cells[i],y=c.cells[i];if(!x||!y)return 0;"
    "var vx=x.getAttribute('data-v'),vy=y.getAttribute('data-v');"
    "var r=(vx!==null&&vy!==null)?(parseFloat(vx)-parseFloat(vy)):"
    "x.textContent.localeCompare(y.textContent);return asc?r:-r;});"
    "rows.forEach(function(r){var s=[],n=r.nextElementSibling;"
    "while(n&&n.classList.contains('sub')){s.push(n);n=n.nextElementSibling;}"
    "b.appendChild(r);s.forEach(function(e){b.appendChild(e);});});}"
    "function arm(t){var hs=t.tHead?t.tHead.rows[0].cells:[];"
    "Array.prototype.forEach.call(hs,function(th,i){th.addEventListener('click',function(){"
    "var asc=th.getAttribute('data-dir')!=='asc';th.setAttribute('data-dir',asc?'asc':'desc');"
    "sortBy(t,i,asc);});});}"
    "document.addEventListener('click',function(e){var th=e.target.closest&&"
    "e.target.closest('table.sortable th');if(!th)return;"
    "sorts[key(th.closest('table'))]={i:th.cellIndex,asc:th.getAttribute('data-dir')==='asc'};});"
    "function swap(o,n){var sc=Array.prototype.map.call(o.querySelectorAll('.scroll'),"
    "function(d){return d.scrollTop;});o.innerHTML=n.innerHTML;"
    "o.querySelectorAll('.scroll').forEach(function(d,i){if(i<sc.length)d.scrollTop=sc[i];});"
    "o.querySelectorAll('table.sortable').forEach(function(t){arm(t);var s=sorts[key(t)];"
    "var th=s&&t.tHead?t.tHead.rows[0].cells[s.i]:null;if(th){"
    "th.setAttribute('data-dir',s.asc?'asc':'desc');sortBy(t,s.i,s.asc);}});}"
    "function apply(html){var doc=new DOMParser().parseFromString(html,'text/html');"
    "doc.querySelectorAll('body>section[id]').forEach(function(n){"
    "var o=document.getElementById(n.id);if(!o){var f=document.querySelector('footer');"
    "if(f)f.parentNode.insertBefore(document.importNode(n,true),f);return;}"
    "if(o.innerHTML!==n.innerHTML)swap(o,n);});}"
    "function tick(){var h={};if(etag)h['If-None-Match']=etag;"
    "fetch(location.pathname,{headers:h,cache:'no-store',credentials:'same-origin'})"
    ".then(function(r){if(r.status===304)return null;if(!r.ok)throw new Error('HTTP '+r.status);"
    "etag=r.headers.get('ETag');return r.text();})"
    ".then(function(t){if(t!==null)apply(t);show('live \\u00b7 updated '+"
    "new Date().toLocaleTimeString()+' \\u00b7 every %d s',false);})"
    ".catch(function(e){show('live \\u00b7 not updated ('+e.message+'), retrying',true);})"
    ".then(function(){setTimeout(tick,every);});}"
    "setTimeout(tick,every);})();</script>\n";

char *po__dashboard_html(int refresh_s) {
  size_t cap = sizeof TEMPLATE + 64;
  char *s = po__malloc(cap);
  if (s) snprintf(s, cap, TEMPLATE, refresh_s, refresh_s, refresh_s);
  return s;
}
