/**
 * A live time series drawn by uPlot: made once per set of series, then given new data as
 * it comes (uPlot redraws a canvas, which is cheap at one point a second), and sized to
 * its container's width.
 */
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';

export interface Series {
  label: string;
  colour: string;
}

export function TimeChart(props: {
  title: string;
  /** Unit of the y axis. */
  unit: string;
  series: Series[];
  /** Epoch seconds, then one array of values per series (null: no value then). */
  data: uPlot.AlignedData;
  heightPx?: number;
  /** The y scale's fixed range, when it has one (a share: 0..100). */
  range?: [number, number];
  testId?: string;
}) {
  const root = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | undefined>(undefined);
  const heightPx = props.heightPx ?? 160;
  // A new set of series (a re-plan changes the stages) makes a new chart.
  const seriesKey = props.series.map((s) => `${s.label}:${s.colour}`).join('|');
  useEffect(() => {
    const element = root.current;
    if (!element) return;
    const style = getComputedStyle(document.documentElement);
    const ink = style.getPropertyValue('--fg').trim() || '#000';
    const line = style.getPropertyValue('--line').trim() || '#ddd';
    const axis = { stroke: ink, grid: { stroke: line, width: 1 }, ticks: { stroke: line } };
    const chart = new uPlot(
      {
        width: Math.max(element.clientWidth, 200),
        height: heightPx,
        scales: {
          x: { time: true },
          ...(props.range ? { y: { range: props.range } } : {}),
        },
        axes: [axis, { ...axis, label: props.unit, size: 56 }],
        series: [
          {},
          ...props.series.map((s) => ({
            label: s.label,
            stroke: s.colour,
            width: 2,
            points: { show: false },
          })),
        ],
        cursor: { drag: { x: false, y: false } },
      },
      props.data,
      element,
    );
    plot.current = chart;
    const resize = new ResizeObserver(() =>
      chart.setSize({ width: Math.max(element.clientWidth, 200), height: heightPx }),
    );
    resize.observe(element);
    return () => {
      resize.disconnect();
      chart.destroy();
      plot.current = undefined;
    };
  }, [seriesKey, heightPx]);
  useEffect(() => {
    plot.current?.setData(props.data);
  }, [props.data]);
  return (
    <figure class="chart" data-testid={props.testId}>
      <figcaption class="muted">{props.title}</figcaption>
      <div ref={root} />
    </figure>
  );
}
