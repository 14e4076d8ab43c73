import { LabIcon } from '@jupyterlab/ui-components';

/** Three linked nodes: the sidebar's and the status item's icon (theme-coloured). */
export const orchIcon = new LabIcon({
  name: 'jupyter_orch:orchestrations',
  svgstr: `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <circle cx="5" cy="6" r="3"/>
    <circle cx="19" cy="6" r="3"/>
    <circle cx="12" cy="19" r="3"/>
    <path d="M8 5h8v2H8z"/>
    <path d="M6.3 8.2l4.4 8-1.7 1-4.4-8z"/>
    <path d="M17.7 8.2l1.7 1-4.4 8-1.7-1z"/>
  </g>
</svg>`
});
