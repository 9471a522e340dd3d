/** A table from a header row and rows of cells; numbers are right-aligned. */
import type { ComponentChildren } from 'preact';

export type Cell = ComponentChildren;

export function Table(props: { head: string[]; rows: Cell[][]; testId?: string }) {
  return (
    <table data-testid={props.testId}>
      <thead>
        <tr>
          {props.head.map((cell) => (
            <th key={cell}>{cell}</th>
          ))}
        </tr>
      </thead>
      <tbody>
        {props.rows.map((row, r) => (
          <tr key={r}>
            {row.map((cell, c) => (
              <td key={c} class={typeof cell === 'number' ? 'n' : undefined}>
                {cell}
              </td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** A headline figure: the value large, its label small under it. */
export function Figure(props: { label: string; value: string; testId?: string }) {
  return (
    <span class="figure">
      <b data-testid={props.testId}>{props.value}</b>
      <small>{props.label}</small>
    </span>
  );
}
